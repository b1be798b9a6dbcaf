"""Storyboards (issue 14), run: moves a stored storyboard (bot/storyboard_start.py) on, shot by shot.

When a shot succeeds the next one (a draft) is queued; when one fails or is cancelled the drafts after it
are cancelled (their held credits go back); a Retry of a failed shot that succeeds plans the rest again
from its last frame. One card per storyboard shows every shot's state, edited as they change. At the end
the shots are joined into one video (stream copy when their streams match) and posted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from bot.core import Button, ButtonStyle, Notice, NoticeKind, PlatformError
from bot.jobs.frames import last_frame_of
from bot.jobs.model import Job, JobState
from bot.jobs.scheduler import budget_day_start
from bot.jobs.store import InvalidTransition
from bot.storyboard_board import KEY, board_notice
from bot.storyboard_start import start
from ima.errors import ImaError

if TYPE_CHECKING:
    from bot.dispatch import Dispatcher

log = logging.getLogger("imabot.storyboard")

MAX_JOIN_BYTES = 200 * 1024 * 1024  # per shot, as for continue
# A restart joins a finished storyboard whose joined video was not delivered, if it ended this recently
# (an older one is not worth a surprise post; its shots were each delivered).
JOIN_RESUME_WINDOW = 24 * 3600.0


@dataclass
class _Card:
    """One storyboard's card: the shots it lists, its message, and whether it needs drawing again."""

    shots: list[str]
    ref: str = ""
    shown: Notice | None = None  # what the card shows now (a progress tick changes nothing on it)
    dirty: bool = True
    task: asyncio.Task[None] | None = None


class Chain:
    """Moves storyboards on: listens to every job change (runner.listeners) and owns the tasks it starts."""

    def __init__(self, d: Dispatcher) -> None:
        self._d = d
        self._seen: set[tuple[str, str]] = set()  # (job id, state) already acted on in this process
        self._tasks: set[asyncio.Task[None]] = set()
        self._cards: dict[str, _Card] = {}  # storyboard id -> its card
        self._joining: set[str] = set()  # last shots whose join runs in this process (one join each)
        d.runner.listeners.append(self.on_change)

    def on_change(self, job: Job) -> None:
        info = job.extra.get(KEY)
        if info and job.state is not JobState.DRAFT and (job.state is not JobState.CANCELLED or job.task_id):
            self.show(info["id"], info["shots"])  # a planned shot that never ran keeps the newest plan
        if not job.finished or (job.id, job.state.value) in self._seen:
            return
        if not info and not (job.state is JobState.SUCCEEDED and job.retry_of):
            return
        self._seen.add((job.id, job.state.value))
        if not info:  # perhaps the retry of a shot that failed: the storyboard goes on from it
            work = self._after_retry(job)
        else:
            work = self._next(job, info) if job.state is JobState.SUCCEEDED else self._stop(job, info)
        self._spawn(work, f"storyboard:{job.id}")

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def show(self, board_id: str, shots: list[str]) -> None:
        """Draws the storyboard's card again soon (one drawing at a time; changes meanwhile coalesce)."""
        card = self._cards.setdefault(board_id, _Card(list(shots)))
        card.shots, card.dirty = list(shots), True
        if card.task is None or card.task.done():
            card.task = self._spawn(self._draw(board_id, card), f"storyboard-card:{board_id}")

    async def _draw(self, board_id: str, card: _Card) -> None:
        d = self._d
        owner = await d.store.get_job(board_id)  # shot 1 as planned: the card's sends are keyed by it
        while card.dirty and owner is not None:
            card.dirty = False
            jobs = [j for j in [await d.store.get_job(i) for i in card.shots] if j is not None]
            notice = board_notice(d.texts, jobs, owner.locale)
            if notice == card.shown:
                continue
            card.shown = notice
            if not card.ref:
                card.ref = await d.runner.delivery.send(owner, notice, stage="storyboard-card")
                continue
            try:
                await d.runner.delivery.messenger(owner).edit(owner.origin, card.ref, notice)
            except PlatformError as exc:  # a card that cannot be edited is not worth failing shots for
                log.info("storyboard %s: card edit refused (%s)", board_id, exc.key)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s crashed", task.get_name(), exc_info=task.exception())

    async def resume(self) -> None:
        """After a restart: queues (or cancels) every waiting shot whose previous shot finished while the
        process was down, exactly as on_change would have, and joins every storyboard whose shots all
        succeeded but whose joined video was not delivered. Call once the runner has started; returns
        without waiting for that work (wait_idle() does)."""
        for last in await self._d.store.succeeded_since(self._d._clock() - JOIN_RESUME_WINDOW):
            info = last.extra.get(KEY)
            if info and owes_join(last, info):
                self._spawn(self._join(last, list(info["shots"])), f"storyboard-join:{last.id}")
        for draft in await self._d.store.draft_jobs():
            info = draft.extra.get(KEY)
            if not info or int(info["index"]) == 0:
                continue  # shot 1 of a storyboard that awaits its Generate press
            before = await self._d.store.get_job(info["shots"][int(info["index"]) - 1])
            if before is not None and before.finished:
                self._seen.discard((before.id, before.state.value))
                self.on_change(before)  # in tasks of this chain: start() never waits on a platform

    async def close(self) -> None:
        """Stops the tasks this chain started (what they had not done, resume() does next start)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def wait_idle(self) -> None:
        """Waits until every task this chain started has ended (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _next(self, job: Job, info: dict[str, Any]) -> None:
        d, shots, index = self._d, info["shots"], int(info["index"])
        if index + 1 < len(shots):
            nxt = await d.store.get_job(shots[index + 1])
            if nxt is None or nxt.state is not JobState.DRAFT:
                return
            try:
                nxt = await d.store.transition(nxt.id, JobState.QUEUED, created_at=d._clock())
            except InvalidTransition:  # cancelled meanwhile
                return
            log.info("storyboard %s: shot %d queued", info["id"], index + 2)
            d.runner.notify(nxt)
            d.runner.admit(nxt)
            return
        await self._join(job, shots)

    async def _stop(self, job: Job, info: dict[str, Any]) -> None:
        """A shot failed or was cancelled: the shots after it never start (their credits go back)."""
        d = self._d
        for later in info["shots"][int(info["index"]) + 1 :]:
            draft = await d.store.get_job(later)
            if draft is not None and draft.state is JobState.DRAFT:
                try:
                    await d.store.transition(draft.id, JobState.CANCELLED, finished_at=d._clock())
                except InvalidTransition:
                    continue
        self.show(info["id"], info["shots"])
        log.info("storyboard %s stopped at shot %d (%s)", info["id"], int(info["index"]) + 1, job.state.value)

    async def _after_retry(self, job: Job) -> None:
        """`job` (succeeded) retried a storyboard shot that did not: the shots after it are planned again
        from its last frame (their credits held again) and the next one is queued."""
        d = self._d
        source = await d.store.get_job(job.retry_of)
        info = source.extra.get(KEY) if source is not None else None
        if source is None or not info or source.state is JobState.SUCCEEDED:
            return  # an ordinary retry, or a variation of a shot that worked: no chain to resume
        index = int(info["index"])
        later = [await d.store.get_job(i) for i in info["shots"][index + 1 :]]
        if any(j is None or j.state is not JobState.CANCELLED or j.task_id for j in later):
            return  # the later shots are not the untouched plan any more (already retried, say)
        ids = [d._new_id() for _ in later]
        shots = [*info["shots"][:index], job.id, *ids]
        job = await d.store.update_job(
            job.id, extra={**job.extra, KEY: {"id": info["id"], "index": index, "shots": shots}}
        )
        since = budget_day_start(d._clock())
        for n, (old, new_id) in enumerate(zip(later, ids, strict=True)):
            assert old is not None
            spec = replace(old.spec, attachments=(last_frame_of(shots[index + n]),))
            draft = replace(
                old,
                id=new_id,
                trace_id=new_id,
                spec=spec,
                state=JobState.DRAFT,
                created_at=d._clock() + n * 1e-3,
                finished_at=None,
                notice_ref="",
                result_ref="",
                extra={KEY: {"id": info["id"], "index": index + 1 + n, "shots": shots}},
            )
            await d.store.add_job(draft)
            if draft.credit is not None:
                await d.store.reserve_credit(draft.id, draft.user_key, draft.credit, limit=0, since=since)
        log.info("storyboard %s: resumed from shot %d by job %s", info["id"], index + 1, job.id)
        await self._next(job, job.extra[KEY])

    async def _join(self, last: Job, shots: list[str]) -> None:
        """Delivers one video of every shot in order (stream copy when the shots' streams match), once:
        the outcome is recorded on the last shot after the platform took the message (a crash before
        that joins again at the next start, and the send's key keeps the platform from posting twice)."""
        if last.id in self._joining:
            return
        self._joining.add(last.id)
        try:
            await self._join_once(last, shots)
        finally:
            self._joining.discard(last.id)

    async def _join_once(self, last: Job, shots: list[str]) -> None:
        from bot.media import MediaError, join_videos_async  # PyAV loads FFmpeg: only when a board ends

        d, t, loc = self._d, self._d.texts, last.locale
        fresh = await d.store.get_job(last.id)
        if fresh is None or not owes_join(fresh, fresh.extra.get(KEY) or {}):
            return  # joined meanwhile (by the run before a restart, say)
        last = fresh
        jobs = [await d.store.get_job(i) for i in shots]
        try:
            parts = [
                await d.runner.client.download(j.result_url, max_bytes=MAX_JOIN_BYTES)
                for j in jobs
                if j is not None
            ]
            joined = await join_videos_async(parts)
            url = await d.runner.client.upload_file(
                joined, filename="storyboard.mp4", content_type="video/mp4"
            )
        except (ImaError, MediaError) as exc:
            log.warning("storyboard %s: join failed (%s)", shots[0], type(exc).__name__)
            notice = Notice(
                NoticeKind.FAILURE, t("shots.storyboard.join_failed", loc, count=len(shots)), locale=loc
            )
            outcome = {"join_failed": True}
        else:
            notice = Notice(
                NoticeKind.SUCCESS,
                t("shots.storyboard.joined", loc, count=len(shots)),
                (t("success.video", loc, url=url),),
                buttons=(Button(t("button.open_video", loc), url=url, style=ButtonStyle.LINK),),
                video_url=url,
                locale=loc,
                mention_user_id=last.origin.user_id,
            )
            outcome = {"joined_url": url}
        if await d.runner.delivery.send(last, notice, stage="storyboard-joined"):
            await d.store.update_job(last.id, extra={**last.extra, KEY: {**last.extra[KEY], **outcome}})


def owes_join(job: Job, info: dict[str, Any]) -> bool:
    """Whether `job` is the succeeded last shot of a storyboard (it ran only once every shot before it
    succeeded) whose joined video, or the word that joining failed, was not delivered yet."""
    shots = info.get("shots") or []
    return (
        job.state is JobState.SUCCEEDED
        and bool(shots)
        and shots[-1] == job.id
        and not info.get("joined_url")
        and not info.get("join_failed")
    )


__all__ = ["KEY", "Chain", "owes_join", "start"]
