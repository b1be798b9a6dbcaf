"""Leases, shared caps and shared budgets in the store, on both back ends: two JobStore objects on one
database stand for two replicas (on PostgreSQL each has its own connection pool, so their transactions
really interleave), racing with asyncio.gather; a fake clock moves leases past their expiry."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from bot.jobs.model import FINISHED_STATES, Job, JobState
from bot.jobs.store import DEFAULT_LEASE_S, JobNotFound, JobStore, LeaseLost, StoreError
from tests.bot.test_store import Clock, make_job

LEASE = 30.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def pair(store_location: str, clock: Clock) -> AsyncIterator[tuple[JobStore, JobStore]]:
    a = await JobStore.open(store_location, clock=clock)
    b = await JobStore.open(store_location, clock=clock)
    a.set_replica("A", LEASE)
    b.set_replica("B", LEASE)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def run_to(store: JobStore, job_id: str, state: JobState, owner: str | None = None) -> Job:
    """Walks a queued job along the happy path to state (RUNNING gets a task id)."""
    path = [JobState.PREPARING, JobState.CREATING, JobState.RUNNING, JobState.SUCCEEDED]
    job = await store.get_job(job_id)
    assert job is not None
    for step in path[: path.index(state) + 1] if state in path else [state]:
        fields = {"task_id": f"t-{job_id}"} if step is JobState.RUNNING else {}
        job = await store.transition(job_id, step, owner=owner, **fields)
    return job


async def test_admission_owns_the_job_and_only_a_lapsed_or_free_one_is_adopted(
    pair: tuple[JobStore, JobStore], clock: Clock
) -> None:
    a, b = pair
    await a.add_job(make_job("held", created_at=1.0))
    await a.add_job(make_job("draft", created_at=2.0, state=JobState.DRAFT))
    await a.add_job(make_job("free", created_at=3.0), owner=None, lease_seconds=None)
    a.replica = None
    await a.add_job(make_job("nobodys", created_at=4.0))
    assert await a.owns("held", "A") and not await a.owns("draft", "A") and not await a.owns("nobodys", "A")
    assert await a.owns("free", "A")  # no owner given: the replica's

    # Only the unowned active job: not A's live lease, not a draft.
    assert [j.id for j in await b.claim_jobs("B", LEASE)] == ["nobodys"]
    assert await b.claim_jobs("B", LEASE) == []  # its own are never handed back
    clock.now += LEASE  # exactly at expiry: still A's (expired means lease_until < now)
    assert await b.claim_jobs("B", LEASE) == []
    clock.now += 0.5
    assert [j.id for j in await b.claim_jobs("B", LEASE)] == ["held", "free"]
    assert await b.owns("held", "B") and not await a.owns("held", "A")

    # The replica that lost the job can no longer write it; the state check comes after the owner check.
    with pytest.raises(LeaseLost) as lost:
        await a.transition("held", JobState.PREPARING, owner="A")
    assert (lost.value.job_id, lost.value.owner, lost.value.holder) == ("held", "A", "B")
    assert not isinstance(lost.value, JobNotFound) and isinstance(lost.value, StoreError)
    with pytest.raises(LeaseLost):
        await a.update_job("held", owner="A", notice_ref="stale")
    job = await b.transition("held", JobState.PREPARING, owner="B", notice_ref="m1")
    assert (job.state, job.notice_ref) == (JobState.PREPARING, "m1")
    with pytest.raises(LeaseLost):  # owner first: a racing replica is told it lost, not "invalid move"
        await a.transition("held", JobState.PREPARING, owner="A")
    assert (await a.update_job("held", notice_ref="m2")).notice_ref == "m2"  # unguarded writes still work


async def test_a_guarded_write_needs_the_lease_even_on_a_free_job(pair: tuple[JobStore, JobStore]) -> None:
    a, _ = pair
    await a.add_job(make_job("j1"), owner=None)
    a.replica = None
    await a.add_job(make_job("j2"))
    with pytest.raises(LeaseLost) as lost:
        await a.update_job("j2", owner="A", notice_ref="x")
    assert lost.value.holder is None
    with pytest.raises(JobNotFound):
        await a.update_job("missing", owner="A", notice_ref="x")
    assert (await a.update_job("j1", owner="A", notice_ref="x")).notice_ref == "x"


async def test_racing_replicas_claim_every_job_exactly_once(pair: tuple[JobStore, JobStore]) -> None:
    a, b = pair
    a.replica = None
    for n in range(40):
        await a.add_job(make_job(f"j{n:02d}", created_at=float(n)))
    batches = await asyncio.gather(
        *(s.claim_jobs(name, LEASE, limit=8) for _ in range(4) for s, name in ((a, "A"), (b, "B")))
    )
    taken = Counter(j.id for batch in batches for j in batch)
    assert len(taken) == 40 and set(taken.values()) == {1}
    for batch in batches:
        assert [j.created_at for j in batch] == sorted(j.created_at for j in batch)  # oldest first
    owners = Counter()
    for n in range(40):
        owners["A" if await a.owns(f"j{n:02d}", "A") else "B" if await a.owns(f"j{n:02d}", "B") else "?"] += 1
    assert owners["?"] == 0 and owners["A"] + owners["B"] == 40


async def test_take_live_steals_other_owners_leases_but_not_its_own(
    pair: tuple[JobStore, JobStore],
) -> None:
    a, b = pair
    await a.add_job(make_job("old-process"))
    await b.add_job(make_job("mine"))
    assert [j.id for j in await b.claim_jobs("B", LEASE, take_live=True)] == ["old-process"]


async def test_renew_covers_work_and_undelivered_finals_and_release_hands_them_over(
    pair: tuple[JobStore, JobStore], clock: Clock
) -> None:
    a, b = pair
    for job_id in ("running", "final", "delivered", "given-up", "lost"):
        await a.add_job(make_job(job_id))
    await run_to(a, "running", JobState.RUNNING, owner="A")
    await run_to(a, "final", JobState.SUCCEEDED, owner="A")
    await run_to(a, "delivered", JobState.SUCCEEDED, owner="A")
    await a.update_job("delivered", owner="A", result_ref="msg-1")
    await a.transition("given-up", JobState.FAILED, owner="A", extra={"outbox": {"undeliverable": True}})
    clock.now += LEASE + 1  # A's renewals lapsed
    assert await b.claim_job("lost", "B", LEASE) is not None
    assert await a.renew_leases("A", LEASE) == {"running", "final"}  # "lost" is gone: stop working it
    clock.now += LEASE / 2
    assert await b.claim_jobs("B", LEASE) == []  # renewed: not expired
    assert await b.claim_undelivered("B", LEASE) == []
    assert await a.release_jobs("A") == 2  # a graceful stop
    assert [j.id for j in await b.claim_jobs("B", LEASE)] == ["running"]  # at once, no lease wait
    assert [j.id for j in await b.claim_undelivered("B", LEASE)] == ["final"]
    assert await a.renew_leases("A", LEASE) == set()
    assert await b.renew_leases("B", LEASE) == {"running", "final", "lost"}


async def test_each_undelivered_final_goes_to_one_replica_and_its_own_come_back(
    pair: tuple[JobStore, JobStore], clock: Clock
) -> None:
    a, b = pair
    a.replica = None
    for n in range(12):
        await a.add_job(make_job(f"f{n:02d}", created_at=float(n)))
        await a.transition(f"f{n:02d}", JobState.CANCELLED)
    await a.add_job(make_job("live"))
    owners = [(s, f"{name}{n}") for n in range(3) for s, name in ((a, "A"), (b, "B"))]  # six replicas
    batches = await asyncio.gather(*(s.claim_undelivered(o, LEASE, limit=2) for s, o in owners))
    taken = Counter(j.id for batch in batches for j in batch)
    assert len(taken) == 12 and set(taken.values()) == {1}  # "live" is not a final
    assert all(j.state in FINISHED_STATES for batch in batches for j in batch)
    mine = {j.id for j in batches[0]}
    assert {j.id for j in await a.claim_undelivered("A0", LEASE, limit=100)} == mine  # its own retries
    clock.now += LEASE + 1
    assert len(await b.claim_undelivered("B", LEASE, limit=100)) == 12  # the others stopped renewing


async def test_claim_job_takes_one_free_expired_or_own_job(
    pair: tuple[JobStore, JobStore], clock: Clock
) -> None:
    a, b = pair
    await a.add_job(make_job("draft", state=JobState.DRAFT))
    await a.add_job(make_job("a-job"))
    await a.add_job(make_job("done"), owner=None)
    await a.transition("done", JobState.CANCELLED)
    claimed = await b.claim_job("draft", "B", LEASE)
    assert claimed is not None and claimed.state is JobState.DRAFT
    assert await a.claim_job("draft", "A", LEASE) is None  # B holds it now
    assert await b.claim_job("a-job", "B", LEASE) is None  # A's live lease
    assert (await a.claim_job("a-job", "A", LEASE)) is not None  # its own: renewed
    clock.now += LEASE + 1
    assert (await b.claim_job("a-job", "B", LEASE)) is not None
    assert await b.claim_job("done", "B", LEASE) is None
    assert await b.claim_job("missing", "B", LEASE) is None
    racing = await asyncio.gather(*(s.claim_job("draft", n, LEASE) for s, n in ((a, "A"), (b, "C"))))
    assert sum(r is not None for r in racing) == 1  # B's lease lapsed; one of the two takes it


async def test_two_replicas_never_pass_the_shared_concurrency_caps(pair: tuple[JobStore, JobStore]) -> None:
    a, b = pair
    users = {"u1": 4, "u2": 3, "u3": 2, "u4": 1}
    jobs: list[tuple[JobStore, str, str]] = []
    for user, count in users.items():
        for n in range(count):
            store, owner = (a, "A") if n % 2 else (b, "B")
            job_id = f"{user}-{n}"
            await store.add_job(make_job(job_id, f"discord:{user}"))
            jobs.append((store, owner, job_id))
    limits = {"global_limit": 5, "per_user_limit": 2}
    started = await asyncio.gather(*(s.try_start(j, o, **limits) for s, o, j in jobs))
    holders = [j for (_, _, j), ok in zip(jobs, started, strict=True) if ok]
    per_user = Counter(j.split("-")[0] for j in holders)
    assert len(holders) == 5 and max(per_user.values()) <= 2
    # Asking again is idempotent for holders and still refused for the rest.
    again = await asyncio.gather(*(s.try_start(j, o, **limits) for s, o, j in jobs))
    assert again == started
    # A holder that runs keeps its slot; one that finishes frees it; a job put back in the queue gives it back.
    owner_of = {j: (s, o) for s, o, j in jobs}
    first, second = holders[0], holders[1]
    s, o = owner_of[first]
    await run_to(s, first, JobState.RUNNING, owner=o)
    waiting = next(j for s2, o2, j in jobs if j not in holders and per_user[j.split("-")[0]] < 2)
    ws, wo = owner_of[waiting]
    assert await ws.try_start(waiting, wo, **limits) is False
    s2, o2 = owner_of[second]
    await s2.transition(second, JobState.PREPARING, owner=o2)
    await s2.transition(second, JobState.QUEUED, owner=o2)  # back in the queue: slot given back
    assert await ws.try_start(waiting, wo, **limits) is True  # so another job takes it
    assert await s2.try_start(second, o2, **limits) is False
    await ws.release_slot(waiting)  # taken but not used: given back without a move
    assert await s2.try_start(second, o2, **limits) is True
    assert await ws.try_start(waiting, wo, **limits) is False
    await s.transition(first, JobState.CANCELLED, owner=o)  # a finished job holds no slot
    assert await ws.try_start(waiting, wo, **limits) is True
    with pytest.raises(LeaseLost):
        await ws.try_start(waiting, "someone-else", **limits)
    assert await s.try_start(first, o, **limits) is False  # finished: never started again


async def test_an_owner_without_a_lease_length_gets_the_default(store_location: str, clock: Clock) -> None:
    a = await JobStore.open(store_location, clock=clock)
    try:
        await a.add_job(make_job("j1"), owner="A")  # no set_replica, no lease_seconds: DEFAULT_LEASE_S
        assert await a.owns("j1", "A")
        clock.now += DEFAULT_LEASE_S
        assert await a.claim_jobs("B", LEASE) == []
        clock.now += 1
        assert [j.id for j in await a.claim_jobs("B", LEASE)] == ["j1"]
    finally:
        await a.close()


async def test_a_draft_or_finished_job_gets_no_slot(pair: tuple[JobStore, JobStore]) -> None:
    a, _ = pair
    await a.add_job(make_job("draft", state=JobState.DRAFT), owner="A")
    assert await a.try_start("draft", "A", global_limit=5, per_user_limit=5) is False
    with pytest.raises(JobNotFound):
        await a.try_start("missing", "A", global_limit=5, per_user_limit=5)


async def test_budget_reservations_hold_across_replicas(pair: tuple[JobStore, JobStore]) -> None:
    a, b = pair
    for n in range(8):
        await a.add_job(make_job(f"b{n}"))
    results = await asyncio.gather(
        *(
            (a if n % 2 else b).reserve_and_update(f"b{n}", "discord:u1", 15, limit=50, since=0, credit=15)
            for n in range(8)
        )
    )
    assert sorted(ok for ok, _, _ in results) == [False] * 5 + [True] * 3
    assert await a.credits_committed("discord:u1", since=0) == 45


async def test_an_event_delivered_to_both_replicas_is_admitted_once(pair: tuple[JobStore, JobStore]) -> None:
    a, b = pair
    results = await asyncio.gather(
        *(
            s.add_job(make_job(f"{name}{n}"), event_keys=[f"evt:{n % 5}", f"msg:{n % 5}"])
            for n in range(20)
            for s, name in ((a, "a"), (b, "b"))
        )
    )
    assert results.count(True) == 5
    assert len(await a.unfinished_jobs()) == 5
    # Keys are claimed in one order whatever order they are given in: no deadlock between replicas.
    flipped = await asyncio.gather(
        a.claim_events(["x", "y", "z"]), b.claim_events(["z", "y", "x"]), a.claim_events(["y", "w"])
    )
    assert flipped.count(True) == 1
