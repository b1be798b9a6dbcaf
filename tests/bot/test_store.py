"""The job store on both back ends (real SQLite files, a real PostgreSQL database: the store_location
fixture): round trips, the state machine, dedup, prefs, credits, migrations. SQLite specifics (WAL, a
killed process, the file itself) are tested on SQLite only."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
import asyncpg
import pytest

from bot.core import Attachment, Origin
from bot.jobs._migrations import LATEST_VERSION, migrate
from bot.jobs._postgres import PgConn
from bot.jobs._schema import JOB_FIELDS, job_to_row
from bot.jobs._sql import is_postgres_url
from bot.jobs._sqlite import SqliteConn
from bot.jobs.model import Job, JobSpec, JobState
from bot.jobs.store import (
    DuplicateJob,
    InvalidTransition,
    JobNotFound,
    JobStore,
    SchemaTooNew,
    StoreError,
    UserPrefs,
    resolve_preferences,
)
from ima.models import ModelId, TaskType


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_job(job_id: str, user: str = "discord:u1", *, created_at: float = 1.0, **changes: object) -> Job:
    origin = Origin(platform=user.split(":")[0], chat_id="c1", user_id=user.split(":")[1])
    spec = JobSpec(task_type=TaskType.TEXT_TO_VIDEO, model_id=ModelId.FAST, prompt="a cat")
    job = Job(id=job_id, user_key=user, origin=origin, spec=spec, locale="en", created_at=created_at)
    return dataclasses.replace(job, **changes)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(store_location: str, clock: Clock):
    s = await JobStore.open(store_location, clock=clock)
    yield s
    await s.close()


@asynccontextmanager
async def raw_conn(location: str) -> AsyncIterator[SqliteConn | PgConn]:
    """A connection of our own to the store's database, outside the store (what another process sees)."""
    if is_postgres_url(location):
        pg = await asyncpg.connect(location)
        try:
            yield PgConn(pg)
        finally:
            await pg.close()
        return
    lite = await aiosqlite.connect(location, isolation_level=None)
    lite.row_factory = sqlite3.Row
    try:
        yield SqliteConn(lite)
    finally:
        await lite.close()


def _full_job() -> Job:
    origin = Origin(
        platform="feishu",
        chat_id="oc_1",
        user_id="ou_9",
        message_id="om_5",
        guild_id="g7",
        is_direct=True,
        extra={"interaction_token": "tok", "thread": "t1"},
    )
    spec = JobSpec(
        task_type=TaskType.FIRST_LAST_FRAME_TO_VIDEO,
        model_id=ModelId.PRO,
        prompt="海边日落 sunset",
        duration=10,
        aspect_ratio="9:16",
        resolution="1080P",
        attachments=(
            Attachment(
                handle="om_5/img_a", filename="a.png", content_type="image/png", size=1234, role="first"
            ),
            Attachment(handle="om_5/img_b", role="last"),
        ),
        notes=(("note.duration_clamped", {"asked": 12, "used": 10}),),
    )
    return Job(
        id="job-full",
        user_key="feishu:ou_9",
        origin=origin,
        spec=spec,
        locale="zh",
        state=JobState.RUNNING,
        created_at=100.5,
        started_at=101.25,
        finished_at=160.75,
        task_id="task-1",
        notice_ref="msg-notice",
        result_ref="msg-result",
        input_urls=("https://cdn.example/a.png", "https://cdn.example/b.png"),
        credit=42,
        result_url="https://cdn.example/v.mp4",
        cover_url="https://cdn.example/c.jpg",
        error_key="ima.timeout",
        error_code="6009",
        error_detail="detail",
        retry_of="job-0",
        trace_id="trace-1",
        extra={"attempts": 2, "notes": [["k", {"v": 1}]], "estimate": {"low": 60, "high": 120}},
    )


async def test_open_creates_folder_wal_file_at_latest_version(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "nested" / "dir" / "jobs.db"
    s = await JobStore.open(path, clock=clock)
    try:
        assert await s.schema_version() == LATEST_VERSION
        assert await s.ping() is True
    finally:
        await s.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = [r[0] for r in raw.execute("SELECT version FROM schema_version ORDER BY version")]
    raw.close()
    assert versions == list(range(1, LATEST_VERSION + 1))


async def test_open_reports_an_unusable_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError):
        await JobStore.open(blocker / "jobs.db")


async def test_every_field_round_trips(store: JobStore) -> None:
    job = _full_job()
    # Guard: the sample sets every field away from its default, so a new Job field must join this test.
    defaults = make_job("x")
    same = [f.name for f in dataclasses.fields(Job) if getattr(job, f.name) == getattr(defaults, f.name)]
    assert same == []
    assert await store.add_job(job) is True
    assert await store.get_job(job.id) == job


async def test_every_job_field_has_a_column(store: JobStore, store_location: str) -> None:
    async with raw_conn(store_location) as raw:
        row = await raw.fetchone("SELECT * FROM jobs")
        assert row is None
        await store.add_job(_full_job())
        columns = set((await raw.fetchone("SELECT * FROM jobs")).keys())
    assert set(JOB_FIELDS) <= columns
    assert set(job_to_row(_full_job())) == set(JOB_FIELDS)


async def test_get_job_of_an_unknown_id_is_none(store: JobStore) -> None:
    assert await store.get_job("nope") is None


async def test_a_redelivered_event_never_makes_a_second_job(store: JobStore) -> None:
    assert await store.add_job(make_job("j1"), event_keys=["evt:1", "msg:1"]) is True
    # Feishu redelivers with the same event id; Discord may deliver the same message id again.
    assert await store.add_job(make_job("j2"), event_keys=["evt:2", "msg:1"]) is False
    assert await store.get_job("j2") is None
    # Nothing of the refused call was written: its fresh key is still unclaimed.
    assert await store.claim_events(["evt:2"]) is True
    assert [j.id for j in await store.unfinished_jobs()] == ["j1"]


async def test_concurrent_adds_with_one_key_make_exactly_one_job(store: JobStore) -> None:
    results = await asyncio.gather(
        *(store.add_job(make_job(f"j{i}"), event_keys=["evt:same"]) for i in range(20))
    )
    assert results.count(True) == 1
    assert len(await store.unfinished_jobs()) == 1


async def test_two_processes_sharing_the_database_still_dedup(store_location: str, clock: Clock) -> None:
    a = await JobStore.open(store_location, clock=clock)
    b = await JobStore.open(store_location, clock=clock)
    try:
        calls = [
            s.add_job(make_job(f"j{i}-{n}"), event_keys=["evt:x"])
            for i, s in enumerate((a, b))
            for n in range(5)
        ]
        results = await asyncio.gather(*calls)
        assert results.count(True) == 1
        assert len(await a.unfinished_jobs()) == 1
    finally:
        await a.close()
        await b.close()


async def test_event_keys_live_for_the_ttl_then_can_be_purged(store: JobStore, clock: Clock) -> None:
    assert await store.claim_events(["click:1"]) is True
    clock.now += 8 * 3600 - 1
    assert await store.claim_events(["click:1"]) is False  # the default keeps keys at least 8 hours
    clock.now += 1
    assert await store.claim_events(["click:1"], ttl=100) is True  # expired: claimable again
    assert await store.claim_events(["short"], ttl=10) is True
    clock.now += 10
    assert await store.purge_events() == 1
    assert await store.claim_events(["click:1"]) is False
    assert await store.claim_events([]) is True
    with pytest.raises(ValueError):
        await store.claim_events(["k"], ttl=0)


async def test_a_duplicate_job_id_raises_and_records_no_keys(store: JobStore) -> None:
    await store.add_job(make_job("j1"), event_keys=["a"])
    with pytest.raises(DuplicateJob) as info:
        await store.add_job(make_job("j1"), event_keys=["b"])
    assert info.value.job_id == "j1"
    assert await store.claim_events(["b"]) is True
    # Any other refusal by SQLite is a StoreError, and also writes nothing.
    with pytest.raises(StoreError) as other:
        await store.add_job(make_job("j2", locale=None), event_keys=["c"])
    assert not isinstance(other.value, DuplicateJob)
    assert await store.claim_events(["c"]) is True


async def test_cancelled_callers_never_leave_half_a_write(store: JobStore) -> None:
    # A caller cancelled mid-call may or may not have written (its commit may already be on the
    # connection's thread), but never half a change, and the store stays usable.
    for i in range(30):
        await store.add_job(make_job(f"j{i}"))
        task = asyncio.create_task(store.transition(f"j{i}", JobState.PREPARING, notice_ref=f"n{i}"))
        for _ in range(i * 5):
            await asyncio.sleep(0)  # yield more each round: cancel while queued, mid-transaction, committing
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        job = await store.get_job(f"j{i}")
        assert (job.state, job.notice_ref) in {(JobState.QUEUED, ""), (JobState.PREPARING, f"n{i}")}
        assert (await store.update_job(f"j{i}", result_ref="usable")).result_ref == "usable"


async def test_transition_follows_the_table_from_the_stored_state(store: JobStore) -> None:
    await store.add_job(make_job("j1"))
    job = await store.transition("j1", JobState.PREPARING)
    assert job.state is JobState.PREPARING
    with pytest.raises(InvalidTransition) as info:
        await store.transition("j1", JobState.SUCCEEDED)
    assert (info.value.current, info.value.target) == (JobState.PREPARING, JobState.SUCCEEDED)
    assert (await store.get_job("j1")).state is JobState.PREPARING
    with pytest.raises(JobNotFound):
        await store.transition("missing", JobState.CANCELLED)


async def test_racing_transitions_from_one_state_let_only_one_through(store: JobStore) -> None:
    await store.add_job(make_job("j1"))
    results = await asyncio.gather(
        *(store.transition("j1", JobState.PREPARING) for _ in range(5)), return_exceptions=True
    )
    assert sum(isinstance(r, Job) for r in results) == 1
    assert sum(isinstance(r, InvalidTransition) for r in results) == 4


async def test_a_failed_write_leaves_state_and_fields_untouched(store: JobStore) -> None:
    await store.add_job(make_job("j1"))
    with pytest.raises(TypeError):
        await store.transition("j1", JobState.PREPARING, notice_ref="m1", extra={"bad": object()})
    job = await store.get_job("j1")
    assert (job.state, job.notice_ref, job.extra) == (JobState.QUEUED, "", {})
    with pytest.raises(TypeError):
        await store.transition("j1", JobState.PREPARING, colour="red")
    with pytest.raises(TypeError):
        await store.update_job("j1", state=JobState.RUNNING)
    assert (await store.get_job("j1")).state is JobState.QUEUED


async def test_transition_stamps_start_and_finish_times(store: JobStore, clock: Clock) -> None:
    await store.add_job(make_job("j1"))
    await store.transition("j1", JobState.PREPARING)
    await store.transition("j1", JobState.CREATING)
    clock.now = 1000.0
    job = await store.transition("j1", JobState.RUNNING, task_id="t1")
    assert (job.started_at, job.task_id, job.finished_at) == (1000.0, "t1", None)
    clock.now = 1090.0
    job = await store.transition("j1", JobState.SUCCEEDED, result_url="https://v")
    assert (job.started_at, job.finished_at, job.result_url) == (1000.0, 1090.0, "https://v")
    await store.add_job(make_job("j2"))
    job = await store.transition("j2", JobState.CANCELLED, finished_at=5.0)
    assert job.finished_at == 5.0


async def test_success_with_a_credit_charges_the_ledger_once(store: JobStore, clock: Clock) -> None:
    await store.add_job(make_job("j1", credit=30))
    for state in (JobState.PREPARING, JobState.CREATING, JobState.RUNNING, JobState.SUCCEEDED):
        await store.transition("j1", state)
    assert await store.credits_spent("discord:u1", since=0) == 30
    await store.record_credit("j1", "discord:u1", 30)
    assert await store.credits_spent("discord:u1", since=0) == 30
    # A failed job with a credit is not charged.
    await store.add_job(make_job("j2", credit=50))
    await store.transition("j2", JobState.FAILED)
    assert await store.credits_spent("discord:u1", since=0) == 30


async def test_credits_spent_counts_from_since(store: JobStore, clock: Clock) -> None:
    clock.now = 100.0
    await store.record_credit("j1", "u", 10)
    clock.now = 200.0
    await store.record_credit("j2", "u", 20)
    await store.record_credit("j3", "other", 99)
    assert await store.credits_spent("u", since=0) == 30
    assert await store.credits_spent("u", since=150) == 20
    assert await store.credits_spent("nobody", since=0) == 0
    with pytest.raises(ValueError):
        await store.record_credit("j4", "u", -1)


async def test_update_job_writes_other_fields(store: JobStore) -> None:
    await store.add_job(make_job("j1", extra={"a": 1}))
    job = await store.update_job("j1", notice_ref="m9", extra={"b": 2}, input_urls=("u1",))
    assert (job.notice_ref, job.extra, job.input_urls, job.state) == (
        "m9",
        {"b": 2},
        ("u1",),
        JobState.QUEUED,
    )
    assert await store.get_job("j1") == job
    with pytest.raises(JobNotFound):
        await store.update_job("missing", notice_ref="x")


async def test_every_write_stamps_updated_at(store: JobStore, store_location: str, clock: Clock) -> None:
    async def stamp() -> float:
        async with raw_conn(store_location) as raw:
            return (await raw.fetchone("SELECT updated_at FROM jobs WHERE id = 'j1'"))[0]

    await store.add_job(make_job("j1"))
    assert await stamp() == clock.now
    clock.now += 10
    await store.transition("j1", JobState.PREPARING)
    assert await stamp() == clock.now
    clock.now += 10
    await store.update_job("j1", notice_ref="m1")
    assert await stamp() == clock.now


async def test_unfinished_jobs_survive_a_restart_oldest_first(store_location: str, clock: Clock) -> None:
    s = await JobStore.open(store_location, clock=clock)
    for job_id, created in (("late", 30.0), ("early", 10.0), ("tie-a", 20.0), ("tie-b", 20.0), ("done", 5.0)):
        await s.add_job(make_job(job_id, created_at=created))
    await s.transition("done", JobState.CANCELLED)
    await s.transition("late", JobState.PREPARING)
    await s.close()
    with pytest.raises(StoreError):
        await s.get_job("late")
    assert await s.ping() is False
    s = await JobStore.open(store_location, clock=clock)
    try:
        assert [j.id for j in await s.unfinished_jobs()] == ["early", "tie-a", "tie-b", "late"]
        assert (await s.get_job("late")).state is JobState.PREPARING
    finally:
        await s.close()


async def test_the_outbox_holds_finals_no_platform_confirmed_until_given_up(store: JobStore) -> None:
    for job_id, created in (
        ("retrying", 3.0),
        ("fresh", 1.0),
        ("given-up", 2.0),
        ("delivered", 4.0),
        ("live", 5.0),
    ):
        await store.add_job(make_job(job_id, created_at=created))
    await store.transition("retrying", JobState.FAILED, extra={"outbox": {"attempts": 2, "next_at": 9.0}})
    await store.transition("fresh", JobState.CANCELLED)
    await store.transition("given-up", JobState.FAILED, extra={"outbox": {"undeliverable": True}})
    await store.transition("delivered", JobState.CANCELLED, result_ref="msg-1")
    assert [j.id for j in await store.undelivered_jobs()] == ["fresh", "retrying"]
    assert (await store.job_for_message("discord", "msg-1")).id == "delivered"
    assert await store.job_for_message("feishu", "msg-1") is None


async def test_recent_and_latest_unfinished_are_per_user(store: JobStore) -> None:
    for i in range(5):
        await store.add_job(make_job(f"a{i}", "discord:a", created_at=float(i)))
    await store.add_job(make_job("b0", "discord:b", created_at=10.0))
    await store.transition("a4", JobState.CANCELLED)
    assert [j.id for j in await store.recent_jobs("discord:a", limit=3)] == ["a4", "a3", "a2"]
    assert (await store.latest_unfinished("discord:a")).id == "a3"
    assert await store.latest_unfinished("discord:nobody") is None


async def test_finished_durations_match_model_duration_and_resolution(store: JobStore, clock: Clock) -> None:
    async def finish(
        job_id: str, model: ModelId, duration: int | None, res: str | None, run: float, end: float
    ):
        spec = JobSpec(TaskType.TEXT_TO_VIDEO, model, "p", duration=duration, resolution=res)
        await store.add_job(make_job(job_id, spec=spec))
        for state in (JobState.PREPARING, JobState.CREATING):
            await store.transition(job_id, state)
        await store.transition(job_id, JobState.RUNNING, started_at=end - run)
        await store.transition(job_id, JobState.SUCCEEDED, finished_at=end)

    await finish("old", ModelId.FAST, 5, "720P", 60.0, 1000.0)
    await finish("new", ModelId.FAST, 5, "720P", 80.0, 2000.0)
    await finish("pro", ModelId.PRO, 5, "720P", 200.0, 1500.0)
    await finish("longer", ModelId.FAST, 10, "720P", 150.0, 1600.0)
    await finish("unsaid", ModelId.FAST, None, None, 70.0, 1700.0)
    await store.add_job(
        make_job("failed", spec=JobSpec(TaskType.TEXT_TO_VIDEO, ModelId.FAST, "p", 5, None, "720P"))
    )
    await store.transition("failed", JobState.FAILED, started_at=0.0, finished_at=999.0)
    assert await store.finished_durations(ModelId.FAST, 5, "720P") == [80.0, 60.0]
    assert await store.finished_durations(ModelId.FAST, 5, "720P", limit=1) == [80.0]
    assert await store.finished_durations(ModelId.FAST, None, None) == [70.0]
    assert await store.finished_durations(ModelId.PRO, 10, "720P") == []


async def test_preferences_merge_clear_and_persist(store_location: str, clock: Clock) -> None:
    s = await JobStore.open(store_location, clock=clock)
    assert await s.get_prefs("discord:u1") == UserPrefs()
    await s.set_prefs("discord:u1", models={TaskType.TEXT_TO_VIDEO: ModelId.PRO}, duration=10)
    prefs = await s.set_prefs("discord:u1", models={"image_to_video": "ima-pro-fast"}, aspect_ratio="9:16")
    assert prefs.models == {TaskType.TEXT_TO_VIDEO: ModelId.PRO, TaskType.IMAGE_TO_VIDEO: ModelId.FAST}
    assert (prefs.duration, prefs.aspect_ratio) == (10, "9:16")
    prefs = await s.set_prefs("discord:u1", models={TaskType.TEXT_TO_VIDEO: None}, duration=None, locale="zh")
    assert prefs == UserPrefs(
        models={TaskType.IMAGE_TO_VIDEO: ModelId.FAST}, aspect_ratio="9:16", locale="zh"
    )
    await s.set_chat_defaults(
        "discord", "c1", resolution="1080P", models={TaskType.TEXT_TO_VIDEO: ModelId.PRO}
    )
    assert (await s.set_chat_defaults("discord", "c1", models=None)).models == {}
    with pytest.raises(TypeError):
        await s.set_prefs("discord:u1", colour="red")
    with pytest.raises(ValueError):
        await s.set_prefs("discord:u1", duration="ten")
    with pytest.raises(ValueError):
        await s.set_prefs("discord:u1", models={TaskType.TEXT_TO_VIDEO: "gpt-video"})
    await s.close()
    s = await JobStore.open(store_location, clock=clock)
    try:
        assert await s.get_prefs("discord:u1") == prefs
        assert await s.get_chat_defaults("discord", "c1") == UserPrefs(resolution="1080P")
        assert await s.get_chat_defaults("feishu", "c1") == UserPrefs()
        assert await s.get_prefs("discord:u2") == UserPrefs()
    finally:
        await s.close()


def test_resolve_preferences_takes_each_value_from_the_first_layer_that_says_it() -> None:
    t2v = TaskType.TEXT_TO_VIDEO
    said = UserPrefs(duration=5)
    user = UserPrefs(models={TaskType.IMAGE_TO_VIDEO: ModelId.PRO}, duration=10, aspect_ratio="9:16")
    chat = UserPrefs(models={t2v: ModelId.PRO}, aspect_ratio="1:1", resolution="720P", locale="zh")
    config = UserPrefs(models={t2v: ModelId.FAST}, resolution="1080P", locale="en")
    got = resolve_preferences(t2v, said, user, chat, config)
    assert (got.model_id, got.duration, got.aspect_ratio, got.resolution, got.locale) == (
        ModelId.PRO,
        5,
        "9:16",
        "720P",
        "zh",
    )
    assert got.sources == {
        "model_id": "chat",
        "duration": "said",
        "aspect_ratio": "user",
        "resolution": "chat",
        "locale": "chat",
    }
    said_model = UserPrefs(models={t2v: ModelId.FAST})
    assert resolve_preferences(t2v, said_model, user, chat, config).model_id is ModelId.FAST
    empty = UserPrefs()
    bare = resolve_preferences(t2v, empty, empty, empty, empty, default_model=ModelId.PRO)
    assert (bare.model_id, bare.duration, bare.sources["model_id"], bare.sources["duration"]) == (
        ModelId.PRO,
        None,
        "default",
        "unset",
    )


async def test_a_v1_database_is_upgraded_with_its_data(store_location: str, clock: Clock) -> None:
    path = store_location
    async with raw_conn(path) as conn:
        assert await migrate(conn, clock, target=1) == 1
        row = job_to_row(make_job("old-job", state=JobState.RUNNING, task_id="t-old"))
        cols = ", ".join(row)
        await conn.execute(
            f"INSERT INTO jobs ({cols}, updated_at) VALUES ({', '.join('?' * len(row))}, 0)",
            tuple(row.values()),
        )
        await conn.execute(
            "INSERT INTO processed_events VALUES ('evt:old', ?, 'old-job')", (clock.now + 3600,)
        )

    s = await JobStore.open(path, clock=clock)
    try:
        assert await s.schema_version() == LATEST_VERSION
        job = await s.get_job("old-job")
        assert (job.state, job.task_id) == (JobState.RUNNING, "t-old")
        assert await s.claim_events(["evt:old"]) is False
        assert (await s.set_prefs("discord:u1", duration=5)).duration == 5
        await s.record_credit("old-job", "discord:u1", 7)
        assert await s.credits_spent("discord:u1", since=0) == 7
    finally:
        await s.close()
    again = await JobStore.open(path, clock=clock)  # reopening applies nothing twice
    await again.close()
    async with raw_conn(path) as raw:
        rows = await raw.fetchall("SELECT version FROM schema_version ORDER BY version")
    assert [r[0] for r in rows] == list(range(1, LATEST_VERSION + 1))


async def test_replicas_starting_together_apply_each_migration_once(pg_url: str, clock: Clock) -> None:
    # PostgreSQL only: replicas share a database there (a SQLite file has one owner, bot/jobs/_lock.py).
    store_location = pg_url
    stores = await asyncio.gather(*(JobStore.open(store_location, clock=clock) for _ in range(4)))
    try:
        assert [await s.schema_version() for s in stores] == [LATEST_VERSION] * 4
        async with raw_conn(store_location) as raw:
            rows = await raw.fetchall("SELECT version FROM schema_version ORDER BY version")
        assert [r[0] for r in rows] == list(range(1, LATEST_VERSION + 1))
        assert await stores[0].add_job(make_job("j1")) and await stores[3].get_job("j1") is not None
    finally:
        for s in stores:
            await s.close()


async def test_a_database_from_a_newer_release_is_refused(store_location: str, clock: Clock) -> None:
    path = store_location
    s = await JobStore.open(path, clock=clock)
    await s.close()
    async with raw_conn(path) as raw:
        await raw.execute("INSERT INTO schema_version VALUES (?, 'future', 0)", (LATEST_VERSION + 1,))
    with pytest.raises(SchemaTooNew) as info:
        await JobStore.open(path, clock=clock)
    assert (info.value.found, info.value.supported) == (LATEST_VERSION + 1, LATEST_VERSION)


_KILLED_CHILD = textwrap.dedent(
    """
    import asyncio, os, signal, sys, traceback
    from bot.core import Origin
    from bot.jobs.model import Job, JobSpec, JobState
    from bot.jobs.store import JobStore
    from ima.models import ModelId, TaskType

    async def main():
        store = await JobStore.open(sys.argv[1])
        spec = JobSpec(TaskType.TEXT_TO_VIDEO, ModelId.FAST, "a cat")
        job = Job(id="j1", user_key="discord:u1", origin=Origin("discord", "c1", "u1"), spec=spec, locale="en")
        await store.add_job(job, event_keys=["evt:1"])
        await store.transition("j1", JobState.PREPARING)
        await store.transition("j1", JobState.CREATING, extra={"attempt": 1})
        print("committed", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint: the WAL must carry it

    try:
        asyncio.run(main())
    except BaseException:
        traceback.print_exc()
        os._exit(3)  # the unclosed store's worker thread would keep the process alive
    """
)


@pytest.mark.slow
async def test_a_killed_process_loses_no_committed_transition(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _KILLED_CHILD, str(path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == -9, err.decode()
    assert out.decode().strip() == "committed"
    assert (tmp_path / "jobs.db-wal").exists()
    s = await JobStore.open(path)
    try:
        job = await s.get_job("j1")
        assert (job.state, job.extra) == (JobState.CREATING, {"attempt": 1})
        assert await s.claim_events(["evt:1"]) is False
    finally:
        await s.close()


async def test_a_stored_model_this_release_does_not_know_is_skipped(
    store: JobStore, store_location: str
) -> None:
    await store.set_prefs("discord:u1", duration=5)
    async with raw_conn(store_location) as raw:
        await raw.execute(
            "UPDATE preferences SET models = ? WHERE owner = 'discord:u1'",
            ('{"text_to_video": "retired-model", "image_to_video": "ima-pro", "new_task": "ima-pro"}',),
        )
    assert await store.get_prefs("discord:u1") == UserPrefs(
        models={TaskType.IMAGE_TO_VIDEO: ModelId.PRO}, duration=5
    )


async def test_a_burst_of_reservations_cannot_pass_the_budget(store: JobStore) -> None:
    for n in range(6):
        await store.add_job(make_job(f"b{n}"))
    results = await asyncio.gather(
        *(store.reserve_credit(f"b{n}", "discord:u1", 15, limit=50, since=0) for n in range(6))
    )
    assert sorted(ok for ok, _ in results) == [False, False, False, True, True, True]
    assert await store.credits_committed("discord:u1", since=0) == 45
    assert await store.credits_spent("discord:u1", since=0) == 0  # nothing charged yet
    # A job that holds a reservation is not reserved again (a resumed admission).
    ok_again, before = await store.reserve_credit("b0", "discord:u1", 15, limit=50, since=0)
    assert ok_again and before == 30 and await store.credits_committed("discord:u1", since=0) == 45
    # No budget: always reserved, still counted.
    await store.add_job(make_job("free", user="discord:u2"))
    assert (await store.reserve_credit("free", "discord:u2", 99, limit=0, since=0))[0]
    assert await store.credits_committed("discord:u2", since=0) == 99
    with pytest.raises(ValueError):
        await store.reserve_credit("b5", "discord:u1", -1, limit=0, since=0)


async def test_a_reservation_becomes_a_charge_is_resized_or_is_released(store: JobStore) -> None:
    reserved = []
    for job_id in ("ok", "cut", "billed", "refunded"):
        await store.add_job(make_job(job_id))
        reserved.append(await store.reserve_credit(job_id, "discord:u1", 30, limit=0, since=0))
        await store.transition(job_id, JobState.PREPARING)
    assert await store.credits_committed("discord:u1", since=0) == 120
    # Reflection made "ok" cheaper: the reservation follows the price IMA used, then becomes the charge.
    await store.transition("ok", JobState.CREATING)
    await store.transition("ok", JobState.RUNNING, task_id="t1", credit=15)
    assert await store.credits_committed("discord:u1", since=0) == 105
    await store.transition("ok", JobState.SUCCEEDED)
    assert await store.credits_spent("discord:u1", since=0) == 15
    # Failed before any task existed: released in the same transaction.
    await store.transition("cut", JobState.FAILED)
    assert await store.credits_committed("discord:u1", since=0) == 75
    # Failed after IMA created the task: kept, it may be billed.
    await store.transition("billed", JobState.CREATING)
    await store.transition("billed", JobState.RUNNING, task_id="t2", credit=30)
    await store.transition("billed", JobState.TIMED_OUT)
    assert await store.credits_committed("discord:u1", since=0) == 75
    # IMA said the task failed: released explicitly; a charge is never released.
    assert await store.release_credit("refunded") is True
    assert await store.release_credit("refunded") is False
    assert await store.release_credit("ok") is False
    assert await store.credits_committed("discord:u1", since=0) == 45
    assert await store.credits_spent("discord:u1", since=0) == 15


async def test_a_v3_ledger_keeps_its_rows_as_charges(store_location: str, clock: Clock) -> None:
    path = store_location
    async with raw_conn(path) as conn:
        assert await migrate(conn, clock, target=3) == 3
        await conn.execute("INSERT INTO credit_ledger VALUES ('old', 'discord:u1', 40, 5.0)")
    s = await JobStore.open(path, clock=clock)
    try:
        assert await s.credits_spent("discord:u1", since=0) == 40
        assert await s.credits_committed("discord:u1", since=0) == 40
        assert await s.release_credit("old") is False
    finally:
        await s.close()
