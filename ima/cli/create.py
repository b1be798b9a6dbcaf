"""`ima create`: choose the model, upload inputs, create with reflection, watch, report, remember the model."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..aliases import normalize_model_id
from ..errors import ImaError, ImaUsageError
from ..models import (
    ESTIMATED_SECONDS,
    CreatedTask,
    ModelId,
    Product,
    ResolvedTask,
    Snapshot,
    Task,
    TaskState,
    TaskType,
)
from ..prefs import DEFAULT_PREFS_PATH, load_prefs, save_prefs, with_recent_use
from ..tasks import check_inputs
from .args import choose_model, clamp_max_wait, parse_overrides, resolve_path
from .notes import note_text
from .output import EXIT_OK, Console
from .query import run_products


class _CreateClient(Protocol):
    async def fetch_products(self, task_type: TaskType, *, refresh: bool = False) -> list[Product]: ...
    async def fetch_task(self, task_id: str) -> Task: ...
    async def prepare_inputs(self, inputs: Sequence[str | os.PathLike[str]]) -> list[str]: ...
    async def create_task(
        self, task_type: TaskType, model_id: ModelId, prompt: str, **kw: Any
    ) -> CreatedTask: ...
    def watch(self, task_id: str, **kw: Any) -> AsyncIterator[Snapshot]: ...


def progress_every(poll_interval: float) -> float:
    """The vendor's progress cadence: every 30 s when polling slower than every 5 s, else every 15 s."""
    return 30.0 if poll_interval > 5 else 15.0


@dataclass
class ProgressCadence:
    """Decides which snapshots get a progress line: one per `every` seconds of elapsed time."""

    every: float
    last: float = 0.0

    def due(self, elapsed: float) -> bool:
        """True (and remembers it) when at least `every` seconds passed since the last printed line."""
        if elapsed - self.last >= self.every:
            self.last = elapsed
            return True
        return False


def result_json(created: CreatedTask, task: Task) -> dict[str, Any]:
    """The vendor's final `--output-json` object (model_name is the Sevio display name)."""
    model = ModelId(created.resolved.model_id)
    return {
        "task_id": created.task_id,
        "url": task.url,
        "cover_url": task.cover_url,
        "model_id": model.value,
        "model_name": model.display_name,
        "credit": created.resolved.credit,
    }


def _attempt_reporter(
    console: Console, log: logging.Logger
) -> Callable[[int, ResolvedTask], Awaitable[None]]:
    async def on_attempt(attempt: int, resolved: ResolvedTask) -> None:
        conditions = ", ".join(f"{k}={v}" for k, v in resolved.rule.conditions.items())
        log.info(
            "create attempt %d: version=%s attribute_id=%s credit=%s params=%s",
            attempt,
            resolved.product.id,
            resolved.rule.attribute_id,
            resolved.credit,
            dict(resolved.params),
        )
        if attempt > 1:
            console.info("attempt_retry", attempt=attempt, conditions=conditions or "-")

    return on_attempt


async def run_create(
    args: argparse.Namespace,
    console: Console,
    client: _CreateClient,
    log: logging.Logger,
    *,
    env: Mapping[str, str],
) -> int:
    """Runs one generation to the end; returns the exit code. Raises ImaError subclasses on failure."""
    task_type = TaskType(args.task_type)
    if args.list_models:
        args.category = task_type.value
        return await run_products(args, console, client, log)
    if args.prompt is None:
        raise ImaUsageError(
            "--prompt is required", code="usage", hint="Run `ima create --help` for the options."
        )
    overrides = parse_overrides(args.extra_params, args.size)
    check_inputs(task_type, args.prompt, args.input_images)
    prefs_path = resolve_path(args.prefs_file, env, "IMA_PREFS_FILE", DEFAULT_PREFS_PATH)
    model, source = choose_model(
        args.model_id, load_prefs(prefs_path), args.user_id, task_type, normalize_model_id
    )
    max_wait = clamp_max_wait(args.max_wait)
    log.info(
        "create task_type=%s model=%s (%s) inputs=%d overrides=%s max_wait=%s",
        task_type.value,
        model.value,
        source,
        len(args.input_images),
        overrides,
        max_wait,
    )
    if source != "arg":
        console.info(
            "model_from_pref" if source == "pref" else "model_default",
            task_type=task_type.value,
            model_name=model.display_name,
            model_id=model.value,
        )
    low, high = ESTIMATED_SECONDS[model]
    console.info("model_line", model_name=model.display_name, model_id=model.value, low=low, high=high)

    urls: list[str] = []
    if args.input_images:
        console.info("uploading", count=len(args.input_images))
        urls = await client.prepare_inputs(args.input_images)
        log.info("inputs ready: %s", urls)
        console.info("inputs_ready", count=len(urls))

    console.info("creating")
    created = await client.create_task(
        task_type,
        model,
        args.prompt,
        input_urls=urls,
        overrides=overrides,
        version=args.version_id,
        on_attempt=_attempt_reporter(console, log),
    )
    credit = created.resolved.credit
    log.info("created task_id=%s attempts=%s credit=%s", created.task_id, created.attempts, credit)
    for note in created.notes:
        console.info("note", text=note_text(console, note))
    if created.attempts > 1:
        console.info("created_after", task_id=created.task_id, attempts=created.attempts, credit=credit)
    else:
        console.info("created", task_id=created.task_id, credit=credit)

    console.info("polling", interval=f"{args.poll_interval:g}", max_wait=f"{max_wait:g}")
    cadence = ProgressCadence(progress_every(args.poll_interval))
    final: Task | None = None
    try:
        async for snap in client.watch(created.task_id, interval=args.poll_interval, max_wait=max_wait):
            if snap.task.state is TaskState.SUCCEEDED:
                final = snap.task
            elif cadence.due(snap.elapsed):
                console.info("progress", percent=snap.percent, elapsed=int(snap.elapsed))
    except asyncio.CancelledError:  # Ctrl-C: the task goes on at IMA, so say where to find it
        console.info("still_running", task_id=created.task_id)
        raise
    if final is None:  # watch() ends only with success or an exception; guard the contract anyway
        raise ImaError("the task ended without a result", code="no_result")

    result = result_json(created, final)
    log.info("succeeded task_id=%s url=%s", created.task_id, result["url"])
    _remember(prefs_path, args.user_id, task_type, ModelId(created.resolved.model_id), credit, console, log)
    if console.json_mode:
        console.emit_json(result)
    else:
        console.line(console.text("done"))
        console.line(console.text("result_url", url=result["url"]))
        if result["cover_url"]:
            console.line(console.text("result_cover", cover_url=result["cover_url"]))
        console.line(console.text("result_task", task_id=result["task_id"]))
        console.line(
            console.text("result_model", model_name=result["model_name"], model_id=result["model_id"])
        )
        console.line(console.text("result_credit", credit=credit))
    return EXIT_OK


def _remember(
    path: str,
    user_id: str,
    task_type: TaskType,
    model: ModelId,
    credit: int,
    console: Console,
    log: logging.Logger,
) -> None:
    # A preference that cannot be saved must not turn a finished video into a failure.
    try:
        save_prefs(path, with_recent_use(load_prefs(path), user_id, task_type.value, model, credit))
    except OSError as exc:
        log.warning("preference not saved: %s", exc)
        console.info("prefs_not_saved", reason=exc.strerror or exc)
