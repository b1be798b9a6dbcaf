"""Bench 6, store round trips: N jobs through the real App (null chat, the emulator in its own process,
time-compressed) from message to delivered final, once on SQLite and once on PostgreSQL, in one run;
prints the statements (BEGIN and COMMIT included) and commits the store sent per job, until the last
message was admitted and for the whole life of a job. SQLite is counted by its trace callback, PostgreSQL by pg_stat_statements on a
throwaway server this script starts (initdb + pg_ctl, as tests/pg.py does).

    python bench/store_rt.py --jobs 100
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import NullChat, bench_config, emulator_process, machine
from bot.app import App
from bot.core import GenerationIntent, Origin
from tests.pg import create_database, start_server, stop_server

SPEED = 20.0  # emulator and bot time both run this much faster than the wall clock
TASK_S = 60.0  # emulator seconds a task takes


class SqliteCounter:
    """Statements on both of the SQLite store's connections (writer and reader), by trace callback."""

    def __init__(self) -> None:
        self.statements = self.commits = 0

    def trace(self, sql: str) -> None:
        self.statements += 1
        self.commits += sql.lstrip().upper().startswith("COMMIT")

    async def attach(self, app: App) -> None:
        db = app.store._db  # bench only: count what the store sends to SQLite
        await db._live().set_trace_callback(self.trace)
        await db._reader.set_trace_callback(self.trace)

    async def read(self) -> tuple[int, int]:
        return self.statements, self.commits


class PgCounter:
    """Statements the server executed in the store's database (pg_stat_statements, utility included)."""

    def __init__(self, admin_url: str, database: str) -> None:
        self.admin_url, self.database = admin_url, database

    async def attach(self, app: App) -> None:
        await self._query("SELECT pg_stat_statements_reset()")

    async def read(self) -> tuple[int, int]:
        rows = await self._query(
            "SELECT query, calls FROM pg_stat_statements WHERE dbid = "
            "(SELECT oid FROM pg_database WHERE datname = $1)",
            self.database,
        )
        statements = sum(r["calls"] for r in rows)
        commits = sum(r["calls"] for r in rows if r["query"].strip().upper().startswith("COMMIT"))
        return statements, commits

    async def _query(self, sql: str, *args: object) -> list:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()


async def one_backend(
    name: str, base_url: str, url: str, counter: SqliteCounter | PgCounter, jobs: int, users: int
) -> tuple[str, float, float, float, float, float]:
    with tempfile.TemporaryDirectory(prefix="imabot-bench-") as tmp:
        chat = NullChat()
        config = bench_config(base_url, Path(tmp) / "bench.sqlite3", n=jobs)
        config = replace(config, store=replace(config.store, url=url))
        app = App(config, adapters=[chat], speedup=SPEED)
        await app.start()
        try:
            await counter.attach(app)
            t0 = time.perf_counter()

            async def one(i: int) -> None:
                origin = Origin("bench", chat_id=f"c{i % 50}", user_id=f"u{i % users}", message_id=f"m{i}")
                await app.dispatcher(GenerationIntent(origin, f"/video fast 5s clip {i}: a fox in snow"))

            await asyncio.gather(*(one(i) for i in range(jobs)))
            admitted = await counter.read()
            await _until(lambda: _all_delivered(app), within=max(120.0, jobs))
            total = await counter.read()
            wall = time.perf_counter() - t0
        finally:
            await app.close()
    return (
        name,
        admitted[0] / jobs,
        admitted[1] / jobs,
        total[0] / jobs,
        total[1] / jobs,
        wall,
    )


async def _all_delivered(app: App) -> bool:
    assert app.store is not None
    return not await app.store.unfinished_jobs() and not await app.store.undelivered_jobs()


async def _until(check: Callable[[], Awaitable[bool]], *, within: float) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("jobs did not finish in time")
        await asyncio.sleep(0.5)  # a bench, not a test: polling the store is fine here


async def run(jobs: int, users: int) -> None:
    results = []
    async with emulator_process(task_seconds=TASK_S, speed=SPEED) as base_url:
        results.append(await one_backend("sqlite", base_url, "", SqliteCounter(), jobs, users))
        folder = Path(tempfile.mkdtemp(prefix="imabot-bench-pg-"))
        try:
            admin = start_server(folder, options="-c shared_preload_libraries=pg_stat_statements")
            url = create_database(admin)
            counter = PgCounter(admin, url.partition("?")[0].rsplit("/", 1)[1])
            await counter._query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            results.append(await one_backend("postgresql", base_url, url, counter, jobs, users))
        finally:
            stop_server(folder)
    print(f"store round trips: {jobs} jobs from {users} users, message -> delivered final (Fast, 5 s)")
    print(f"  machine      {machine()}")
    print("  back end     by last admission: statements  commits   whole job: statements  commits   wall")
    for name, a_st, a_co, t_st, t_co, wall in results:
        print(f"  {name:<12} {a_st:>28.1f} {a_co:>8.2f} {t_st:>22.1f} {t_co:>8.2f} {wall:>6.1f} s")
    print("  per job; statements include BEGIN and COMMIT. 'By last admission' counts everything until the")
    print(
        "  last message was admitted, so it includes what the runner did meanwhile (more on a slower store)."
    )
    print("  PostgreSQL also claims each job and its slot in the database (leases, shared caps).")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=100)
    p.add_argument("--users", type=int, default=20)
    a = p.parse_args()
    asyncio.run(run(a.jobs, a.users))


if __name__ == "__main__":
    main()
