"""The runner against real parts: emulator over HTTP, SQLite, console transcript, virtual time."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

from bot.jobs.model import JobState
from bot.jobs.runner import RunnerSettings
from ima.emulator import Emulator
from ima.models import RECORDS_URL, SUBSCRIPTION_URL, ModelId, TaskType

from .harness import VirtualClock, pipeline


async def test_fast_job_prenotice_progress_at_cadence_then_video(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        job = await p.submit(p.job("a puppy running on grass", duration=10, aspect_ratio="9:16"))
        done = await p.wait_finished(job.id)
        assert done.state is JobState.SUCCEEDED
        recs = p.records(job.id)
        sends = [r for r in recs if r["op"] == "send"]
        assert [s["kind"] for s in sends] == ["prenotice", "success"]
        assert "Ima Sevio 1.0-Fast" in sends[0]["title"]
        assert sends[1]["video"].startswith(p.emulator.base_url)
        progress = [
            r for r in recs if r["op"] == "edit" and r["kind"] == "progress" and r["progress"] not in (0, 100)
        ]
        assert progress, "progress edits expected"
        # Every progress edit edits the pre-notice message, never a new one.
        assert {r["ref"] for r in recs if r["op"] == "edit"} == {sends[0]["ref"]}
        # The Fast cadence is 30 s: consecutive progress edits are at least 30 s of job time apart.
        times = [r["at"] for r in progress]
        assert all(b - a >= 30 for a, b in itertools.pairwise(times))
        # P = min(95, floor(elapsed / estimated_max * 100)) with the Fast table's 120 s maximum.
        started = done.started_at
        for r in progress:
            assert r["progress"] == min(95, int((r["at"] - started) / 120 * 100))
        assert done.credit and await p.store.credits_spent(job.user_key, since=0) == done.credit


async def test_pro_job_edits_every_45_seconds(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        job = await p.submit(p.job(model=ModelId.PRO))
        await p.wait_finished(job.id)
        times = [
            r["at"]
            for r in p.records(job.id)
            if r["op"] == "edit" and r["kind"] == "progress" and r["progress"] not in (0, 100)
        ]
        assert len(times) >= 2
        assert all(b - a >= 45 for a, b in itertools.pairwise(times))


async def test_never_finishing_task_times_out_at_40_minutes_with_records_link(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        p.emulator.faults.add("media_never")
        job = await p.submit(p.job())
        done = await p.wait_finished(job.id, within=60)
        assert done.state is JobState.TIMED_OUT
        assert 2400 < done.finished_at - done.started_at <= 2400 + 8 + 1
        final = p.records(job.id)[-2] if p.records(job.id)[-1]["op"] == "edit" else p.records(job.id)[-1]
        assert final["kind"] == "failure"
        out = "".join(p.console._out.text)
        assert RECORDS_URL in out
        # Nothing is charged for a job that never delivered.
        assert await p.store.credits_spent(job.user_key, since=0) == 0


async def test_insufficient_credits_says_what_to_do(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        p.emulator.faults.add("create_code", code=4008)
        job = await p.submit(p.job())
        done = await p.wait_finished(job.id)
        assert done.state is JobState.FAILED and done.error_key == "insufficient_credits"
        out = "".join(p.console._out.text)
        assert SUBSCRIPTION_URL in out and "No credits were charged" in out


async def test_failed_generation_offers_retry_and_other_model(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        p.emulator.faults.add("media_failed", message="content policy")
        job = await p.submit(p.job(locale="zh"))
        done = await p.wait_finished(job.id)
        assert done.state is JobState.FAILED and done.error_key == "task_failed"
        out = "".join(p.console._out.text)
        assert "content policy" in out and f"/retry {job.id}" in out and f"/other {job.id}" in out
        assert "改用 Ima Sevio 1.0" in out  # Chinese user, the other model by its Sevio name


async def test_cancel_while_queued_never_creates(tmp_path: Path) -> None:
    async with pipeline(tmp_path, global_limit=1, per_user_limit=1) as p:
        p.emulator.faults.add("media_never")
        first = await p.submit(p.job("first"))
        second = await p.submit(p.job("second"))
        await p.wait_for(lambda: p.store.get_job(first.id))
        cancelled = await p.runner.cancel(second.id)
        assert cancelled is not None and cancelled.state is JobState.CANCELLED
        await p.runner.cancel(first.id)
        done = await p.wait_finished(first.id)
        assert done.state is JobState.CANCELLED
        prompts = [t.prompt for t in p.emulator.tasks.values()]
        assert "second" not in prompts


async def test_resume_running_job_keeps_editing_the_same_message(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with Emulator(clock=clock) as emulator:
        async with pipeline(tmp_path, clock=clock, emulator=emulator) as p:
            p.emulator.faults.add("task_seconds", seconds=300)
            job = await p.submit(p.job())
            running = await p.wait_for(lambda: _state(p, job.id, JobState.RUNNING))
            await p.runner.close()  # a shutdown mid-job: the store keeps it RUNNING
            assert (await p.store.get_job(job.id)).state is JobState.RUNNING
            ref = running.notice_ref
        # A new process: same store file, same emulator (it outlives the bot).
        async with pipeline(tmp_path, emulator=emulator, clock=clock) as p2:
            done = await p2.wait_finished(job.id)
            assert done.state is JobState.SUCCEEDED and done.task_id == running.task_id
            edits = [r for r in p2.records(job.id) if r["op"] == "edit"]
            assert edits and {r["ref"] for r in edits} == {ref}
            assert len(emulator.tasks) == 1
            finals = [r for r in p2.records(job.id) if r["op"] == "send" and r["kind"] == "success"]
            assert len(finals) == 1


async def test_create_in_flight_at_crash_is_reported_never_resent(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with Emulator(clock=clock) as emulator:
        async with pipeline(tmp_path, clock=clock, emulator=emulator) as p:
            job = p.job()
            assert await p.store.add_job(job)
            await p.store.transition(job.id, JobState.PREPARING)
            await p.store.transition(job.id, JobState.CREATING)
            await p.runner.close()
        async with pipeline(tmp_path, emulator=emulator, clock=clock) as p2:
            done = await p2.wait_finished(job.id)
            assert done.state is JobState.UNCERTAIN
            out = "".join(p2.console._out.text)
            assert f"/retry {job.id}" in out and RECORDS_URL in out
            assert len(emulator.tasks) == 0


async def test_estimate_switches_to_history_after_enough_jobs(tmp_path: Path) -> None:
    settings = replace(RunnerSettings(), history_min_samples=3)
    async with pipeline(tmp_path, settings=settings) as p:
        for i in range(3):
            j = await p.submit(p.job(f"clip {i}", duration=5, resolution="720P"))
            await p.wait_finished(j.id)
        job = await p.submit(p.job("clip 4", duration=5, resolution="720P"))
        await p.wait_finished(job.id)
        out = "".join(p.console._out.text)
        assert "from 3 recent jobs" in out


async def test_first_last_frame_job_uploads_both_images(tmp_path: Path) -> None:
    png = (Path(__file__).parent.parent / "data" / "tiny.png").read_bytes()
    first, last = tmp_path / "a.png", tmp_path / "b.png"
    first.write_bytes(png)
    last.write_bytes(png)
    from bot.core import Attachment

    async with pipeline(tmp_path) as p:
        atts = (
            Attachment(str(first), "a.png", "image/png", len(png), "first"),
            Attachment(str(last), "b.png", "image/png", len(png), "last"),
        )
        job = await p.submit(
            p.job("from day to night", task_type=TaskType.FIRST_LAST_FRAME_TO_VIDEO, attachments=atts)
        )
        done = await p.wait_finished(job.id)
        assert done.state is JobState.SUCCEEDED, (done.error_key, done.error_detail)
        assert len(done.input_urls) == 2


async def _state(p, job_id: str, state: JobState):  # type: ignore[no-untyped-def]
    job = await p.store.get_job(job_id)
    return job if job is not None and job.state is state else None


async def test_daily_budget_refuses_a_job_that_would_pass_it_and_counts_only_successes(
    tmp_path: Path,
) -> None:
    async with pipeline(tmp_path) as p:
        first = await p.submit(p.job("first clip", duration=5, resolution="720P"))
        done = await p.wait_finished(first.id)
        cost = done.credit
        assert cost and await p.store.credits_spent(first.user_key, since=0) == cost
        # A failed job is not charged, so it does not eat the budget.
        p.emulator.faults.add("media_failed")
        failed = await p.submit(p.job("failing clip", duration=5, resolution="720P"))
        assert (await p.wait_finished(failed.id)).state is JobState.FAILED
        assert await p.store.credits_spent(first.user_key, since=0) == cost
        p.runner.settings = replace(p.runner.settings, daily_credit_budget=cost + cost // 2)
        refused = await p.submit(p.job("second clip", duration=5, resolution="720P"))
        done2 = await p.wait_finished(refused.id)
        assert done2.state is JobState.FAILED and done2.error_key == "budget_exceeded"
        assert "more than is left of your daily budget" in "".join(p.console._out.text)
        assert len(p.emulator.tasks) == 2  # the refused job never reached IMA


async def test_cancel_while_the_prenotice_is_on_its_way_ends_the_job(tmp_path: Path) -> None:
    """The run task is cancelled while it still waits for the admission (pre-notice) to finish: the job
    must still end CANCELLED with a final, never stay QUEUED."""
    async with pipeline(tmp_path) as p:
        job = await p.submit(p.job("cancelled at once"))
        # No await between submit and cancel's first step: the dispatch loop hands the job its run
        # task while the pre-notice is still being prepared.
        cancelled = await p.runner.cancel(job.id)
        assert cancelled is not None
        done = await p.wait_finished(job.id)
        assert done.state is JobState.CANCELLED
        assert [r["kind"] for r in p.records(job.id) if r["op"] == "send"][-1] == "cancelled"
        assert len(p.emulator.tasks) == 0
        assert await p.store.credits_committed(job.user_key, since=0) == 0


async def test_a_queued_job_whose_prenotice_was_shown_runs_after_a_restart(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with Emulator(clock=clock) as emulator:
        async with pipeline(tmp_path, clock=clock, emulator=emulator, global_limit=1, per_user_limit=1) as p:
            p.emulator.faults.add("task_seconds", seconds=300)
            first = await p.submit(p.job("first"))
            second = await p.submit(p.job("second"))
            await p.wait_for(lambda: _state(p, first.id, JobState.RUNNING))
            queued = await p.wait_for(lambda: _with_notice(p, second.id))
            assert queued.state is JobState.QUEUED
            await p.runner.close()
        async with pipeline(tmp_path, emulator=emulator, clock=clock) as p2:
            done = await p2.wait_finished(second.id, within=30)
            assert done.state is JobState.SUCCEEDED
            edits = [r for r in p2.records(second.id) if r["op"] == "edit"]
            assert edits and {r["ref"] for r in edits} == {queued.notice_ref}


async def _with_notice(p, job_id: str):  # type: ignore[no-untyped-def]
    job = await p.store.get_job(job_id)
    return job if job is not None and job.notice_ref else None


async def test_cancel_during_a_create_on_the_wire_waits_for_its_answer(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        p.emulator.faults.add("create_delay", seconds=0.5)
        job = await p.submit(p.job("slow to create"))
        await p.wait_for(lambda: _state(p, job.id, JobState.CREATING))
        await p.runner.cancel(job.id)
        done = await p.wait_finished(job.id)
        # Not interrupted: the task IMA created is known, and the user is told it may still finish.
        assert done.state is JobState.CANCELLED and done.task_id in p.emulator.tasks
        out = "".join(p.console._out.text)
        assert "IMA may still finish the task it already started" in out


async def test_shutdown_gives_a_create_on_the_wire_time_to_come_back(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        p.emulator.faults.add("create_delay", seconds=0.5)
        job = await p.submit(p.job("created during shutdown"))
        await p.wait_for(lambda: _state(p, job.id, JobState.CREATING))
        await p.runner.close()
        stored = await p.store.get_job(job.id)
        # Stored with its task (a restart watches it), not CREATING (a restart would call it uncertain).
        assert stored.state is JobState.RUNNING and stored.task_id in p.emulator.tasks


async def test_a_budget_refused_job_leaves_the_queue_at_once(tmp_path: Path) -> None:
    settings = replace(RunnerSettings(), daily_credit_budget=20)
    async with pipeline(tmp_path, settings=settings, global_limit=1, per_user_limit=1) as p:
        p.emulator.faults.add("media_never")
        first = await p.submit(p.job("first", duration=5, resolution="720P"))
        await p.wait_for(lambda: _state(p, first.id, JobState.RUNNING))
        refused = await p.submit(p.job("second", duration=5, resolution="720P"))
        done = await p.wait_finished(refused.id)
        assert done.state is JobState.FAILED and done.error_key == "budget_exceeded"
        assert p.runner.scheduler.queued_count == 0 and p.runner.scheduler.running_count == 1
        assert await p.store.credits_committed(first.user_key, since=0) == 15  # only the running job
