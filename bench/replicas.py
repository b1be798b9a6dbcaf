"""Bench 7, replicas: N in-flight jobs polling in one SQLite process, then 2 replicas x N in-flight jobs over
one PostgreSQL (two real Apps with leases in this process, the server in its own), in one run, against one
emulator in another process. Prints, for each: CPU per poll (the bot process; for PostgreSQL also the
server's processes), database statements per job at admission, and statements per job and poll interval
in the steady state (polls, progress, lease renewals). Time-scaled polls: `--poll-interval 1` makes
N jobs poll as often as 8N jobs at the real 8 s.

    python bench/replicas.py --jobs 1000                 # 2 x 1,000 over PostgreSQL beside 1,000 on SQLite
    python bench/replicas.py --jobs 5000 --window 20     # the issue's 2 x 5,000 (minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import NullChat, bench_config, cpu_s, emulator_process, machine
from bench.store_rt import PgCounter, SqliteCounter
from bot.app import App
from bot.core import GenerationIntent, Origin
from bot.jobs.model import JobState
from tests.pg import create_database, start_server, stop_server

DETAIL = {"endpoint": "/open/v1/tasks/detail", "status": "200"}
LEASE_S = 30.0  # the default: renewals every 10 s


def polls(apps: list[App]) -> float:
    name = "imabot_ima_request_duration_seconds_count"
    return sum(a.metrics.registry.get_sample_value(name, DETAIL) or 0.0 for a in apps)


def server_cpu_s(folder: Path | None) -> float:
    """CPU seconds of the PostgreSQL server started in folder: the postmaster and its children."""
    if folder is None:
        return 0.0
    pid = int((folder / "data" / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1]: ppid
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / tick


async def phase(
    name: str,
    base_url: str,
    url: str,
    replicas: int,
    jobs: int,
    interval: float,
    window: float,
    counter: SqliteCounter | PgCounter,
    pg_folder: Path | None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="imabot-bench-") as tmp:
        apps: list[App] = []
        for n in range(replicas):
            config = bench_config(
                base_url,
                Path(tmp) / "bench.sqlite3",
                n=jobs * replicas,  # the caps are shared across replicas: room for every job
                jobs={"poll_interval": interval, "lease_seconds": LEASE_S, "replica_id": f"r{n}"},
            )
            apps.append(App(replace(config, store=replace(config.store, url=url)), adapters=[NullChat()]))
        running: set[str] = set()
        all_running = asyncio.Event()

        def watch(job: Any) -> None:
            if job.state is JobState.RUNNING:
                running.add(job.id)
                if len(running) >= jobs * replicas:
                    all_running.set()

        try:
            for app in apps:
                await app.start()
                app.runner.listeners.append(watch)
            await counter.attach(apps[0])
            gc.collect()
            c0, s0 = cpu_s(), server_cpu_s(pg_folder)
            for i in range(jobs * replicas):
                app = apps[i % replicas]
                origin = Origin("bench", chat_id=f"c{i % 50}", user_id=f"u{i % 500}", message_id=f"m{i}")
                await app.dispatcher(GenerationIntent(origin, f"/video 5s bench clip {i}: a fox in snow"))
            await asyncio.wait_for(all_running.wait(), timeout=max(180.0, jobs / 5))
            admitted = (await counter.read())[0]
            ramp_cpu, ramp_server = cpu_s() - c0, server_cpu_s(pg_folder) - s0
            await asyncio.sleep(interval * 3)  # a bench, not a test: into the steady polling rhythm
            gc.collect()
            p0, c0, s0, st0, t0 = (
                polls(apps),
                cpu_s(),
                server_cpu_s(pg_folder),
                (await counter.read())[0],
                time.perf_counter(),
            )
            await asyncio.sleep(window)
            p1, c1, s1, st1, t1 = (
                polls(apps),
                cpu_s(),
                server_cpu_s(pg_folder),
                (await counter.read())[0],
                time.perf_counter(),
            )
            renewals = sum(a.runner.leases.renewals for a in apps if a.runner.leases is not None)
        finally:
            for app in apps:
                await app.close()
    total = jobs * replicas
    cycles = (t1 - t0) / interval
    return {
        "name": name,
        "jobs": total,
        "admission_statements": admitted / total,
        "ramp_cpu_ms": (ramp_cpu + ramp_server) / total * 1000,
        "polls": p1 - p0,
        "cpu_per_poll_ms": (c1 - c0) / max(1.0, p1 - p0) * 1000,
        "server_per_poll_ms": (s1 - s0) / max(1.0, p1 - p0) * 1000,
        "statements_per_job_cycle": (st1 - st0) / total / cycles,
        "window": t1 - t0,
        "renewals": renewals,
    }


async def run(jobs: int, interval: float, window: float) -> None:
    from bot.speed import loop_name

    results = []
    async with emulator_process() as base_url:
        results.append(
            await phase("sqlite, 1 process", base_url, "", 1, jobs, interval, window, SqliteCounter(), None)
        )
        folder = Path(tempfile.mkdtemp(prefix="imabot-bench-pg-"))
        try:
            admin = start_server(folder, options="-c shared_preload_libraries=pg_stat_statements")
            url = create_database(admin)
            counter = PgCounter(admin, url.partition("?")[0].rsplit("/", 1)[1])
            await counter._query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            results.append(
                await phase(
                    "postgresql, 2 replicas", base_url, url, 2, jobs, interval, window, counter, folder
                )
            )
        finally:
            stop_server(folder)
    print(
        f"replicas: {jobs} in-flight jobs per process, poll interval {interval:g} s, window {window:g} s, "
        f"loop {loop_name()}"
    )
    print(f"  machine  {machine()}")
    print(
        "  store                    jobs   polls in window  CPU/poll bot  +server   stmts/job admission"
        "  stmts/job/poll cycle"
    )
    for r in results:
        print(
            f"  {r['name']:<23} {r['jobs']:>5} {r['polls']:>16.0f} {r['cpu_per_poll_ms']:>10.3f} ms"
            f" {r['server_per_poll_ms']:>6.3f} ms {r['admission_statements']:>20.1f}"
            f" {r['statements_per_job_cycle']:>21.3f}"
        )
    print(
        "  (statements include BEGIN/COMMIT; a poll cycle with no change writes nothing, so steady-state "
        "statements are progress edits' refs and lease renewals, one UPDATE per replica per lease/3)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=1000, help="in-flight jobs per process")
    p.add_argument("--poll-interval", type=float, default=1.0)
    p.add_argument("--window", type=float, default=10.0)
    a = p.parse_args()
    from bot.speed import run as run_on_loop

    run_on_loop(run(a.jobs, a.poll_interval, a.window))


if __name__ == "__main__":
    main()
