"""`imabot console --sandbox`: the in-process IMA emulator and a store that outlives the process.

The emulator keeps its tasks in memory, so a task it was running when the sandbox stopped would be
unknown to the next sandbox's emulator, and the resumed job would wait on it for 40 minutes. Before the
bot starts, `restore_tasks` gives the new emulator a task for every stored job that had one: it finishes
when it would have (elapsed wall time counts), so running jobs really resume at the next start."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from bot.config import Config, parse_config
from bot.jobs.model import Job
from bot.jobs.store import JobStore
from ima.emulator import DEFAULT_API_KEY, Emulator, EmuTask

STORE_NAME = "sandbox.sqlite3"


def sandbox_config(emu: Emulator, state_dir: str) -> Config:
    """The sandbox's config: the emulator's URLs and key, the store under state_dir (made absolute).
    Raises ConfigError (key store.path) when state_dir cannot hold the store."""
    folder = Path(os.path.abspath(os.path.expanduser(state_dir)))
    return parse_config(
        {
            "ima": {
                "api_key": DEFAULT_API_KEY,
                "base_url": emu.base_url,
                "upload_base_url": emu.upload_base_url,
            },
            "store": {"path": str(folder / STORE_NAME)},
            "web": {"enabled": False},
            "logging": {"level": "WARNING"},
        }
    )


async def restore_tasks(emu: Emulator, store_path: str, *, wall: float | None = None) -> int:
    """Adds to emu a task for each unfinished stored job that has an IMA task id; returns how many."""
    store = await JobStore.open(store_path)  # creates the file on a first run: the bot would anyway
    try:
        jobs = [j for j in await store.unfinished_jobs() if j.task_id]
    finally:
        await store.close()
    now_wall = time.time() if wall is None else wall
    for job in jobs:
        emu.state.tasks[job.task_id] = _task_for(emu, job, now_wall)
    return len(jobs)


def _task_for(emu: Emulator, job: Job, now_wall: float) -> EmuTask:
    state = emu.state
    spec = job.spec
    elapsed = max(0.0, now_wall - (job.started_at or now_wall))
    seconds = state.task_seconds(spec.model_id.value)
    params = {
        k: v
        for k, v in (
            ("duration", spec.duration),
            ("aspect_ratio", spec.aspect_ratio),
            ("resolution", spec.resolution),
        )
        if v is not None
    }
    return EmuTask(
        id=job.task_id,
        biz_id=f"biz_{uuid.uuid4().hex[:16]}",
        key=DEFAULT_API_KEY,
        task_type=spec.task_type.value,
        model_id=spec.model_id.value,
        model_version=spec.model_id.value,
        attribute_id=0,
        points=job.credit or 0,
        n=1,
        prompt=spec.prompt,
        params=params,
        created=state.now() - elapsed,
        seconds=seconds,
        pending_seconds=seconds * state.config.pending_fraction,
        created_ms=int((now_wall - elapsed) * 1000),
        timeout_ms=int((now_wall - elapsed + state.config.task_timeout_seconds) * 1000),
    )
