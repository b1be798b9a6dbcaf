"""A real pipeline for tests: emulator over HTTP, SQLite store, console adapter with a transcript, and one
virtual clock that every part reads, so minutes of job time pass without sleeping."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bot.adapters.console import ConsoleAdapter
from bot.core import Origin
from bot.jobs.model import Job, JobSpec
from bot.jobs.runner import JobRunner, RunnerSettings
from bot.jobs.scheduler import Scheduler
from bot.jobs.store import JobStore
from bot.jobs.texts import Texts
from ima import ImaClient
from ima.emulator import DEFAULT_API_KEY, Emulator, EmulatorConfig
from ima.models import ModelId, TaskType
from tests.waiting import until_job_change

T0 = 1_800_000_000.0


class VirtualClock:
    """Wall time that moves only when someone sleeps: `sleep(dt)` advances it by dt at once."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


@dataclass
class Pipeline:
    emulator: Emulator
    store: JobStore
    client: ImaClient
    runner: JobRunner
    dispatch_settings: Any
    console: ConsoleAdapter
    clock: VirtualClock
    transcript: Path
    texts: Texts
    _dispatcher: Any = None

    @property
    def dispatcher(self) -> Any:
        """The real Dispatcher over this pipeline (built on first use: it brings in the parser)."""
        if self._dispatcher is None:
            from bot.dispatch import Dispatcher, DispatchSettings

            self._dispatcher = Dispatcher(
                self.store,
                self.runner,
                self.texts,
                self.dispatch_settings or DispatchSettings(),
                clock=self.clock,
            )
        return self._dispatcher

    def records(self, job_id: str | None = None) -> list[dict[str, Any]]:
        if not self.transcript.exists():
            return []
        recs = [json.loads(line) for line in self.transcript.read_text(encoding="utf-8").splitlines()]
        return [r for r in recs if job_id is None or r.get("job") == job_id]

    async def wait_for(self, predicate: Callable[[], Any], within: float = 20.0) -> Any:
        """Waits (on job-change events, never by sleeping) until predicate() is truthy."""
        return await until_job_change(self.runner.listeners, predicate, within)

    async def wait_finished(self, job_id: str, within: float = 20.0) -> Job:
        async def done() -> Job | None:
            job = await self.store.get_job(job_id)
            return job if job is not None and job.finished and job.result_ref else None

        return await self.wait_for(done, within)

    def job(
        self,
        prompt: str = "a puppy running on grass",
        *,
        model: ModelId = ModelId.FAST,
        task_type: TaskType = TaskType.TEXT_TO_VIDEO,
        user: str = "u1",
        locale: str = "en",
        **spec: Any,
    ) -> Job:
        origin = Origin(platform="console", chat_id="console", user_id=user, message_id="m1", is_direct=True)
        jid = secrets.token_hex(6)
        return Job(
            id=jid,
            user_key=f"console:{user}",
            origin=origin,
            locale=locale,
            created_at=self.clock(),
            spec=JobSpec(task_type=task_type, model_id=model, prompt=prompt, **spec),
            trace_id=jid,
        )

    async def submit(self, job: Job) -> Job:
        assert await self.store.add_job(job)
        self.runner.admit(job)
        return job


@asynccontextmanager
async def pipeline(
    tmp_path: Path,
    *,
    emulator_config: EmulatorConfig | None = None,
    settings: RunnerSettings | None = None,
    dispatch: Any = None,
    global_limit: int = 4,
    per_user_limit: int = 2,
    emulator: Emulator | None = None,
    clock: VirtualClock | None = None,
) -> AsyncIterator[Pipeline]:
    clock = clock or VirtualClock()
    own_emulator = emulator is None
    emu = emulator or Emulator(emulator_config or EmulatorConfig(), clock=clock)
    if own_emulator:
        await emu.start()
    store = await JobStore.open(tmp_path / "jobs.sqlite3", clock=clock)
    session = aiohttp.ClientSession()
    transcript = tmp_path / "transcript.jsonl"
    texts = Texts.load()
    try:
        client = ImaClient(
            session, DEFAULT_API_KEY, base_url=emu.base_url, upload_base_url=emu.upload_base_url, clock=clock
        )
        console = ConsoleAdapter(stdout=_Sink(), transcript=transcript, clock=clock, cwd=tmp_path)
        runner = JobRunner(
            store=store,
            client=client,
            scheduler=Scheduler(global_limit=global_limit, per_user_limit=per_user_limit),
            messengers={"console": console},
            texts=texts,
            settings=settings or RunnerSettings(),
            clock=clock,
            sleep=clock.sleep,
        )
        p = Pipeline(emu, store, client, runner, dispatch, console, clock, transcript, texts)
        await runner.start()
        try:
            yield p
        finally:
            await runner.close()
    finally:
        await session.close()
        await store.close()
        if own_emulator:
            await emu.stop()


class _Sink:
    """Console output nobody reads (tests read the transcript)."""

    def __init__(self) -> None:
        self.text: list[str] = []

    def write(self, s: str) -> int:
        self.text.append(s)
        return len(s)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False
