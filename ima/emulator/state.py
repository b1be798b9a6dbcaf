"""The emulator's mutable state: clock, balances, tasks, uploads, faults and the masked request log."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

from .config import EmulatorConfig, Variants
from .faults import OUTCOME_KINDS, FaultKind, FaultSet
from .products import Tree, load_trees
from .rules import Order
from .tasks import EmuTask, Outcome

Clock = Callable[[], float]
LOGGED_HEADERS = (
    "authorization",
    "content-type",
    "user-agent",
    "x-app-source",
    "x_app_language",
    "x-app-language",
)
SECRET_QUERY = frozenset({"appuid", "cmimtoken"})
_OUTCOME_BY_KIND = {
    FaultKind.MEDIA_FAILED: Outcome.FAILED,
    FaultKind.MEDIA_DELETED: Outcome.DELETED,
    FaultKind.MEDIA_STATUS_FAILED: Outcome.STATUS_FAILED,
    FaultKind.MEDIA_NO_URL: Outcome.NO_URL,
    FaultKind.MEDIA_NEVER: Outcome.NEVER,
}


def load_assets() -> dict[str, bytes]:
    """The bundled result video and cover, by extension ("mp4", "jpg")."""
    root = resources.files(__package__).joinpath("assets")
    return {"mp4": root.joinpath("sample.mp4").read_bytes(), "jpg": root.joinpath("cover.jpg").read_bytes()}


def mask(secret: str) -> str:
    """A secret as logs may show it: the first 6 characters and an ellipsis."""
    return secret[:6] + "…" if len(secret) > 6 else "…"


def mask_text(text: str, secrets: Iterable[str]) -> str:
    """The text with each secret in it masked."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, mask(secret))
    return text


def mask_json(value: Any, secrets: list[str]) -> Any:
    """A JSON value with every secret inside its strings masked."""
    if isinstance(value, str):
        return mask_text(value, secrets)
    if isinstance(value, list):
        return [mask_json(v, secrets) for v in value]
    if isinstance(value, Mapping):
        return {k: mask_json(v, secrets) for k, v in value.items()}
    return value


@dataclass
class RequestRecord:
    """One request as the emulator saw it; secrets already masked."""

    seq: int
    at: float
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None
    status: int | None = None
    code: int | None = None
    fault: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class RequestLog:
    """Every non-admin request in arrival order, for tests to inspect."""

    def __init__(self) -> None:
        self._records: list[RequestRecord] = []
        self._seq = itertools.count(1)

    def add(self, **kw: Any) -> RequestRecord:
        record = RequestRecord(seq=next(self._seq), **kw)
        self._records.append(record)
        return record

    def find(self, path: str | None = None, method: str | None = None) -> list[RequestRecord]:
        """The records whose path starts with `path` and whose method is `method` (either may be None)."""
        return [
            r
            for r in self._records
            if (path is None or r.path.startswith(path)) and (method is None or r.method == method.upper())
        ]

    def clear(self) -> None:
        self._records.clear()

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(list(self._records))

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index: int) -> RequestRecord:
        return self._records[index]


@dataclass
class UploadSlot:
    """A path handed out by the upload-token call, and the bytes once PUT."""

    content_type: str
    expires: int
    data: bytes | None = None


@dataclass
class EmulatorState:
    """Everything the handlers share. One per emulator; no module-level state."""

    config: EmulatorConfig
    clock: Clock = time.monotonic
    trees: dict[str, Tree] = field(default_factory=dict)
    offset: float = 0.0
    variants: Variants = field(init=False)
    mirror_status: bool = field(init=False)
    verify_status: str = field(init=False)
    balances: dict[str, int] = field(init=False, repr=False)
    faults: FaultSet = field(init=False)
    tasks: dict[str, EmuTask] = field(default_factory=dict)
    uploads: dict[str, UploadSlot] = field(default_factory=dict, repr=False)
    requests: RequestLog = field(default_factory=RequestLog, repr=False)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    assets: dict[str, bytes] = field(default_factory=load_assets, repr=False)
    signing_secret: bytes = field(default_factory=lambda: os.urandom(16), repr=False)

    def __post_init__(self) -> None:
        if not self.trees:
            self.trees = load_trees(self.config.products_path)
        self.reset()

    def reset(self) -> None:
        """Back to the configured state: balances, faults, mode and variants; no tasks, uploads or log."""
        self.variants = self.config.variants
        self.mirror_status = self.config.mirror_status
        self.verify_status = self.config.verify_status
        self.balances = dict(self.config.api_keys)
        self.faults = FaultSet(self.config.faults)
        self.tasks.clear()
        self.uploads.clear()
        self.requests.clear()
        self.offset = 0.0

    def now(self) -> float:
        """Emulator time: the injected clock plus any admin advance."""
        return self.clock() + self.offset

    def advance(self, seconds: float) -> float:
        """Move emulator time forward (never back); returns the new time."""
        self.offset += max(0.0, float(seconds))
        return self.now()

    def set_variants(self, **changes: Any) -> Variants:
        """Switch served spellings at runtime; returns the new variants."""
        self.variants = replace(self.variants, **changes)
        return self.variants

    def known_key(self, key: str | None) -> bool:
        return bool(key) and key in self.balances

    def secrets(self, *extra: str | None) -> list[str]:
        """Strings to mask in the log: the known keys and whatever key a request presented."""
        found = {k for k in (*self.balances, *self.config.api_keys, *extra) if k}
        return sorted(found, key=len, reverse=True)

    def task_seconds(self, model_id: str) -> float:
        """How long a task of this model runs at the configured speed, in emulator seconds."""
        base = self.config.base_seconds.get(model_id, self.config.default_seconds)
        return base / self.config.speed

    def open_task(self, key: str, order: Order) -> EmuTask:
        """Bill the key and record a new task, applying any media-outcome and duration faults."""
        now, wall_ms = self.now(), int(time.time() * 1000)
        seconds = self.task_seconds(str(order.leaf.get("model_id")))
        timed = self.faults.take([FaultKind.TASK_SECONDS], params=order.params, prompt=order.prompt)
        if timed is not None and timed.seconds is not None:
            seconds = timed.seconds
        fault = self.faults.take(OUTCOME_KINDS, params=order.params, prompt=order.prompt)
        task = EmuTask(
            id=f"task_{uuid.uuid4().hex[:20]}",
            biz_id=f"biz_{uuid.uuid4().hex[:16]}",
            key=key,
            task_type=order.task_type,
            model_id=str(order.leaf.get("model_id")),
            model_version=str(order.leaf.get("id")),
            attribute_id=int(order.rule["attribute_id"]),
            points=int(order.rule["points"]),
            n=order.n,
            prompt=order.prompt,
            params=order.params,
            created=now,
            seconds=seconds,
            pending_seconds=seconds * self.config.pending_fraction,
            outcome=_OUTCOME_BY_KIND[fault.kind] if fault else Outcome.SUCCESS,
            no_url_seconds=(fault.seconds or 0.0) if fault else 0.0,
            error_msg=(fault.message if fault else "") or "",
            created_ms=wall_ms,
            timeout_ms=wall_ms + int(self.config.task_timeout_seconds * 1000),
        )
        self.balances[key] -= task.cost
        self.tasks[task.id] = task
        return task
