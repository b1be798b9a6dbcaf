"""Issue 13, in one process: two runners (replicas "a" and "b") with leases over one store, one emulator
and one console (the shared platform: any replica edits any message). Real time, scaled down (lease 1 s,
polls every 0.05 s, the emulator 60x faster); every wait is on a condition with a timeout, never a sleep.

The store is a SQLite file opened twice (each replica its own connection); tests/ops/test_replicas.py runs
the same over PostgreSQL in two processes."""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.adapters.console import ConsoleAdapter
from bot.core import Origin
from bot.jobs.model import Job, JobSpec, JobState
from bot.jobs.runner import JobRunner, RunnerSettings
from bot.jobs.scheduler import Scheduler
from bot.jobs.store import JobStore
from bot.jobs.texts import Texts
from bot.metrics import Metrics
from ima import ImaClient
from ima.emulator import DEFAULT_API_KEY, Emulator, EmulatorConfig
from ima.models import ModelId, TaskType
from tests.bot.harness import _Sink
from tests.waiting import until_job_change

pytestmark = pytest.mark.timeout(120)

LEASE = 1.0
RECHECK_S = 0.1
WITHIN = 30.0
FINAL_KINDS = {"success", "failure", "cancelled"}


@dataclass
class Replica:
    name: str
    store: JobStore
    runner: JobRunner


@dataclass
class Rig:
    emu: Emulator
    console: ConsoleAdapter
    transcript: Path
    replicas: dict[str, Replica]
    make: Callable[[str], Any]
    stdout: _Sink

    def records(self, job_id: str) -> list[dict[str, Any]]:
        lines = self.transcript.read_text(encoding="utf-8").splitlines() if self.transcript.exists() else []
        return [r for r in map(json.loads, lines) if r.get("job") == job_id]

    def finals(self, job_id: str) -> list[dict[str, Any]]:
        return [r for r in self.records(job_id) if r["op"] == "send" and r["kind"] in FINAL_KINDS]

    async def wait(self, check: Callable[[], Any], within: float = WITHIN) -> Any:
        """Returns check()'s first truthy result (sync or async): re-checked on every job change of any
        replica and at least every RECHECK_S (a lease round changes no job, and notifies nobody)."""
        first, *others = [rep.runner.listeners for rep in self.replicas.values()]
        return await until_job_change(first, check, within, also=others, recheck=RECHECK_S)

    async def finished(self, job_id: str, store: JobStore) -> Job:
        async def done() -> Job | None:
            job = await store.get_job(job_id)
            return job if job is not None and job.finished and job.result_ref else None

        return await self.wait(done)


def job_for(user: str = "u1", prompt: str = "a puppy on grass", **spec: Any) -> Job:
    import secrets

    jid = secrets.token_hex(6)
    origin = Origin(platform="console", chat_id="console", user_id=user, message_id=jid, is_direct=True)
    return Job(
        id=jid,
        user_key=f"console:{user}",
        origin=origin,
        locale="en",
        created_at=0.0,
        spec=JobSpec(task_type=TaskType.TEXT_TO_VIDEO, model_id=ModelId.FAST, prompt=prompt, **spec),
        trace_id=jid,
    )


@asynccontextmanager
async def rig(
    tmp_path: Path, names: tuple[str, ...] = ("a", "b"), *, global_limit: int = 4, per_user: int = 2
) -> AsyncIterator[Rig]:
    emu = Emulator(EmulatorConfig(speed=60.0))
    await emu.start()
    session = aiohttp.ClientSession()
    transcript = tmp_path / "transcript.jsonl"
    stdout = _Sink()
    console = ConsoleAdapter(stdout=stdout, transcript=transcript, cwd=tmp_path)
    texts = Texts.load()
    replicas: dict[str, Replica] = {}

    async def make(name: str) -> Replica:
        store = await JobStore.open(tmp_path / "jobs.sqlite3")
        client = ImaClient(
            session, DEFAULT_API_KEY, base_url=emu.base_url, upload_base_url=emu.upload_base_url
        )
        runner = JobRunner(
            store=store,
            client=client,
            scheduler=Scheduler(global_limit=global_limit, per_user_limit=per_user),
            messengers={"console": console},
            texts=texts,
            settings=RunnerSettings(
                poll_interval=0.05,
                cadence={ModelId.FAST: 0.1, ModelId.PRO: 0.1},
                lease_seconds=LEASE,
                replica_id=name,
                time_scale=60.0,
            ),
        )
        await runner.start()
        replicas[name] = Replica(name, store, runner)
        return replicas[name]

    try:
        for name in names:
            await make(name)
        yield Rig(emu, console, transcript, replicas, make, stdout)
    finally:
        for r in replicas.values():
            await r.runner.close()
            await r.store.close()
        await session.close()
        await emu.stop()


async def test_a_graceful_stop_hands_a_running_job_over_and_it_keeps_its_message(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        a, b = r.replicas["a"], r.replicas["b"]
        job = job_for()
        assert await a.store.add_job(job)  # the store's default owner: replica a
        assert await a.store.owns(job.id, "a")  # held from the moment it is stored: no one else claims it
        a.runner.admit(job)
        running = await r.wait(lambda: _state(a.store, job.id, JobState.RUNNING, with_ref=True))
        await r.wait(lambda: a.runner.leases is not None and a.runner.leases.owned == 1)  # renewed once
        await a.runner.close()  # SIGTERM: releases a's jobs
        assert a.runner.leases is not None and a.runner.leases.owned == 0  # /metrics: a holds nothing now
        done = await r.finished(job.id, b.store)
        assert await b.store.owns(job.id, "b")
        assert done.state is JobState.SUCCEEDED and done.task_id == running.task_id
        assert len(r.emu.tasks) == 1  # watched again, never created again
        edits = {rec["ref"] for rec in r.records(job.id) if rec["op"] == "edit"}
        assert edits <= {running.notice_ref}  # every progress edit on the one message
        assert len(r.finals(job.id)) == 1
        assert b.runner.leases is not None and b.runner.leases.adoptions >= 1


async def test_a_replica_starting_takes_released_jobs_up_in_its_first_round(tmp_path: Path) -> None:
    async with rig(tmp_path, ("a",)) as r:
        a = r.replicas["a"]
        job = job_for(prompt="handed to a newcomer", duration=10)
        assert await a.store.add_job(job)
        a.runner.admit(job)
        await r.wait(lambda: _state(a.store, job.id, JobState.RUNNING, with_ref=True))
        await a.runner.close()  # releases it; no other replica runs yet
        b = await r.make("b")
        await b.runner.wait_resumed()
        # Claimed and watched again by the start-up round itself, not one lease round later.
        assert b.runner.knows(job.id) and await b.store.owns(job.id, "b")
        done = await r.finished(job.id, b.store)
        assert done.state is JobState.SUCCEEDED and len(r.emu.tasks) == 1 and len(r.finals(job.id)) == 1


async def test_a_job_a_dead_replica_left_creating_is_reported_uncertain_not_created(tmp_path: Path) -> None:
    async with rig(tmp_path, ("b",)) as r:
        b = r.replicas["b"]
        job = job_for(prompt="cut off while creating")
        # What a replica killed in the middle of its create request leaves: CREATING, its lease running out.
        assert await b.store.add_job(job, owner="dead", lease_seconds=0.2)
        for state in (JobState.PREPARING, JobState.CREATING):
            await b.store.transition(job.id, state, owner="dead")
        done = await r.finished(job.id, b.store)
        assert done.state is JobState.UNCERTAIN and done.error_key == "create_interrupted"
        assert r.emu.tasks == {}
        assert len(r.finals(job.id)) == 1


async def test_a_dead_replica_s_running_job_is_watched_again_on_the_same_message(tmp_path: Path) -> None:
    async with rig(tmp_path, ("b",)) as r:
        b = r.replicas["b"]
        job = job_for(prompt="left running by a crash")
        created = await b.runner.client.create_task(TaskType.TEXT_TO_VIDEO, ModelId.FAST, job.spec.prompt)
        ref = await r.console.send(job.origin, _progress_notice(job.id), key=f"{job.id}:prenotice")
        assert await b.store.add_job(job, owner="dead", lease_seconds=0.2)
        for state in (JobState.PREPARING, JobState.CREATING):
            await b.store.transition(job.id, state, owner="dead")
        await b.store.transition(
            job.id, JobState.RUNNING, owner="dead", task_id=created.task_id, credit=created.resolved.credit
        )
        await b.store.update_job(job.id, owner="dead", notice_ref=ref)
        done = await r.finished(job.id, b.store)
        assert done.state is JobState.SUCCEEDED and done.notice_ref == ref
        assert len(r.emu.tasks) == 1
        assert {rec["ref"] for rec in r.records(job.id) if rec["op"] == "edit"} == {ref}
        assert len(r.finals(job.id)) == 1


async def test_a_replica_that_lost_a_job_stops_without_a_word_and_the_new_holder_ends_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with rig(tmp_path) as r:
        a, b = r.replicas["a"], r.replicas["b"]
        job = job_for(prompt="taken over")
        assert await a.store.add_job(job)
        a.runner.admit(job)
        await r.wait(lambda: _state(a.store, job.id, JobState.RUNNING, with_ref=True))
        # A partition, as the store sees it: a's hold is gone and b takes the job.
        await a.store.release_jobs("a")
        done = await r.finished(job.id, b.store)
        assert done.state is JobState.SUCCEEDED and len(r.emu.tasks) == 1
        assert len(r.finals(job.id)) == 1
        assert a.runner.leases is not None and a.runner.leases.lost == 1
        await r.wait(lambda: job.id not in a.runner.local_jobs())
        assert not [x.getMessage() for x in caplog.records if x.levelno >= logging.ERROR]  # no task crashed


async def test_the_caps_hold_across_replicas(tmp_path: Path) -> None:
    async with rig(tmp_path, global_limit=1, per_user=1) as r:
        a, b = r.replicas["a"], r.replicas["b"]
        jobs = [job_for(user=f"u{n}", prompt=f"capped {n}") for n in range(4)]
        for n, job in enumerate(jobs):
            side = a if n % 2 else b
            assert await side.store.add_job(job)
            side.runner.admit(job)
        done = [await r.finished(j.id, a.store) for j in jobs]
        assert all(j.state is JobState.SUCCEEDED for j in done)
        spans = sorted((j.started_at or 0.0, j.finished_at or 0.0) for j in done)
        assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans)), spans
        assert collections.Counter(len(r.finals(j.id)) for j in jobs) == {1: 4}


async def test_a_cancel_pressed_on_the_other_replica_ends_the_job_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with rig(tmp_path) as r:
        a, b = r.replicas["a"], r.replicas["b"]
        job = job_for(prompt="cancelled from elsewhere", duration=10)
        assert await a.store.add_job(job)
        a.runner.admit(job)
        await r.wait(lambda: _state(a.store, job.id, JobState.RUNNING, with_ref=True))
        await b.runner.cancel(job.id)  # the button press reached replica b
        done = await r.finished(job.id, b.store)
        assert done.state is JobState.CANCELLED
        await r.wait(lambda: job.id not in a.runner.local_jobs())
        assert [f["kind"] for f in r.finals(job.id)] == ["cancelled"]
        assert not [x.getMessage() for x in caplog.records if x.levelno >= logging.ERROR]  # no task crashed
        assert b.runner.leases is not None and b.runner.leases.fence() == {"owner": "b"}  # fenced again


async def test_a_cancel_pressed_elsewhere_during_the_create_says_ima_may_still_run_it(tmp_path: Path) -> None:
    from ima.emulator.faults import FaultKind

    async with rig(tmp_path) as r:
        a, b = r.replicas["a"], r.replicas["b"]
        r.emu.faults.add(FaultKind.CREATE_DELAY, seconds=3.0)  # a's create takes its time at IMA
        job = job_for(prompt="cancelled while created", duration=10)
        assert await a.store.add_job(job)
        a.runner.admit(job)
        await r.wait(lambda: _state(a.store, job.id, JobState.CREATING))
        await b.runner.cancel(job.id)  # pressed on b while a's create is on the wire
        done = await r.finished(job.id, b.store)
        assert done.state is JobState.CANCELLED
        await r.wait(lambda: job.id not in a.runner.local_jobs())
        assert [f["kind"] for f in r.finals(job.id)] == ["cancelled"]
        note = Texts.load()("cancelled.running_note", "en")
        assert note in "".join(r.stdout.text)  # not "nothing happened": IMA got the create


async def test_work_held_here_that_nothing_runs_is_picked_up_but_drafts_wait(tmp_path: Path) -> None:
    async with rig(tmp_path, ("b",)) as r:
        b = r.replicas["b"]
        # Held by b but never admitted (a resume cut short, an admission between two awaits) ...
        stray = job_for(prompt="held but idle")
        assert await b.store.add_job(stray, owner="b")
        # ... a storyboard shot waiting for its Generate press, and a final nobody sent yet.
        draft = dataclasses.replace(job_for(prompt="a draft"), state=JobState.DRAFT)
        assert await b.store.add_job(draft, owner="b")
        unsent = job_for(prompt="failed before its final went out")
        assert await b.store.add_job(unsent, owner="b")
        await b.store.transition(unsent.id, JobState.FAILED, owner="b", error_key="create_failed")
        done = await r.finished(stray.id, b.store)
        assert done.state is JobState.SUCCEEDED and len(r.finals(stray.id)) == 1
        sent = await r.finished(unsent.id, b.store)
        assert sent.state is JobState.FAILED and [f["kind"] for f in r.finals(unsent.id)] == ["failure"]
        kept = await b.store.get_job(draft.id)
        assert kept is not None and kept.state is JobState.DRAFT and r.records(draft.id) == []
        assert len(r.emu.tasks) == 1


async def test_metrics_show_each_replica_s_leases(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        a = r.replicas["a"]
        assert a.runner.leases is not None
        metrics = Metrics()
        metrics.bind_leases(a.runner.leases)
        job = job_for()
        assert await a.store.add_job(job)
        a.runner.admit(job)
        await r.finished(job.id, a.store)
        await r.wait(lambda: a.runner.leases is not None and a.runner.leases.renewals >= 2)
        text = metrics.render().decode()
        assert 'imabot_replica_lease_renewals_total{replica="a"}' in text
        assert 'imabot_replica_owned_jobs{replica="a"}' in text
        assert 'imabot_replica_adoptions_total{replica="a"} 0.0' in text
        assert 'imabot_replica_leases_lost_total{replica="a"} 0.0' in text
        assert Metrics().render().decode().count("imabot_replica_") == 0  # one process, no replicas


async def _state(store: JobStore, job_id: str, state: JobState, *, with_ref: bool = False) -> Job | None:
    job = await store.get_job(job_id)
    if job is None or job.state is not state or (with_ref and not job.notice_ref):
        return None
    return job


def _progress_notice(job_id: str) -> Any:
    from bot.core import Notice, NoticeKind

    return Notice(NoticeKind.PROGRESS, "⏳ Generating…", ("10%",), 10, job_id=job_id)


def test_lease_settings_are_typed_and_checked() -> None:
    from bot.config import ConfigError, parse_config
    from bot.jobs.leases import LeaseSettings, default_replica_id

    c = parse_config({"jobs": {"lease_seconds": 4.5, "replica_id": "bot-a"}})
    assert (c.jobs.lease_seconds, c.jobs.replica_id) == (4.5, "bot-a")
    assert parse_config({}).jobs.lease_seconds == 30.0
    for bad in (0, -1, 3601):
        with pytest.raises(ConfigError) as info:
            parse_config({"jobs": {"lease_seconds": bad}})
        assert info.value.key == "jobs.lease_seconds"
    assert LeaseSettings("x", 30.0).every == 10.0  # three renewals in one lease
    mine, other = default_replica_id(), default_replica_id()
    assert mine != other and mine.split(":")[1] == str(__import__("os").getpid())
