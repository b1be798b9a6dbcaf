"""Fault injection: what can go wrong, when it applies, and how many times."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..errors import ImaUsageError
from .rules import normalise_key, normalise_value


class FaultError(ImaUsageError):
    key = "emulator_fault"


class FaultKind(StrEnum):
    CREATE_CODE = "create_code"  # answer create with this business code; nothing is created or billed
    CREATE_DROP = "create_drop"  # create and bill the task, then drop the connection (outcome unknown)
    CREATE_DELAY = "create_delay"  # answer create after `seconds` of real time
    DETAIL_CODE = "detail_code"  # answer detail with this business code
    DETAIL_HTTP = "detail_http"  # answer detail with this bare HTTP status and a non-JSON body
    DETAIL_DELAY = "detail_delay"  # answer detail after `seconds` of real time
    DETAIL_DROP = "detail_drop"  # drop the connection instead of answering detail
    MEDIA_FAILED = "media_failed"  # the task ends with resource_status 2 and error_msg
    MEDIA_DELETED = "media_deleted"  # the task ends with resource_status 3
    MEDIA_STATUS_FAILED = "media_status_failed"  # resource_status 1 but status "failed" (url present)
    MEDIA_NO_URL = "media_no_url"  # resource_status 1 "success" without url for `seconds` more
    MEDIA_NEVER = "media_never"  # the task stays processing forever
    TASK_SECONDS = "task_seconds"  # the task takes `seconds` of emulator clock, whatever the speed
    UPLOAD_CODE = "upload_code"  # answer the upload-token call with this business code
    PUT_STATUS = "put_status"  # answer the presigned PUT with this HTTP status


CREATE_KINDS = frozenset({FaultKind.CREATE_CODE, FaultKind.CREATE_DROP, FaultKind.CREATE_DELAY})
DETAIL_KINDS = frozenset(
    {FaultKind.DETAIL_CODE, FaultKind.DETAIL_HTTP, FaultKind.DETAIL_DELAY, FaultKind.DETAIL_DROP}
)
OUTCOME_KINDS = frozenset(
    {
        FaultKind.MEDIA_FAILED,
        FaultKind.MEDIA_DELETED,
        FaultKind.MEDIA_STATUS_FAILED,
        FaultKind.MEDIA_NO_URL,
        FaultKind.MEDIA_NEVER,
    }
)
_NEEDS_CODE = frozenset({FaultKind.CREATE_CODE, FaultKind.DETAIL_CODE, FaultKind.UPLOAD_CODE})
_NEEDS_SECONDS = frozenset({FaultKind.CREATE_DELAY, FaultKind.DETAIL_DELAY, FaultKind.TASK_SECONDS})
_DEFAULT_CODE = {FaultKind.DETAIL_HTTP: 503, FaultKind.PUT_STATUS: 500}
_DEFAULT_SECONDS = {FaultKind.MEDIA_NO_URL: 30.0}
_FIELDS = ("kind", "code", "times", "when", "prompt_contains", "task_id", "seconds", "message")


@dataclass(frozen=True)
class Fault:
    """One fault rule. `times=None` means every match; `when` compares inner params like the server does."""

    kind: FaultKind
    code: int | None = None
    times: int | None = 1
    when: Mapping[str, Any] = field(default_factory=dict)
    prompt_contains: str | None = None
    task_id: str | None = None
    seconds: float | None = None
    message: str = ""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", FaultKind(self.kind))
        except ValueError:
            raise FaultError(f"unknown fault kind {self.kind!r}; one of {', '.join(FaultKind)}") from None
        if self.code is None and self.kind in _DEFAULT_CODE:
            object.__setattr__(self, "code", _DEFAULT_CODE[self.kind])
        if self.seconds is None and self.kind in _DEFAULT_SECONDS:
            object.__setattr__(self, "seconds", _DEFAULT_SECONDS[self.kind])
        if self.kind in _NEEDS_CODE and not isinstance(self.code, int):
            raise FaultError(f"fault {self.kind} needs an integer code")
        if self.kind in _NEEDS_SECONDS and not isinstance(self.seconds, int | float):
            raise FaultError(f"fault {self.kind} needs seconds")
        if self.times is not None and (not isinstance(self.times, int) or self.times < 1):
            raise FaultError("fault times must be a positive integer or null (always)")
        object.__setattr__(self, "when", {normalise_key(k): normalise_value(v) for k, v in self.when.items()})

    @classmethod
    def from_mapping(cls, raw: Any) -> Fault:
        """The fault a JSON/YAML mapping describes; raises FaultError on unknown keys or bad values."""
        if not isinstance(raw, Mapping):
            raise FaultError("a fault must be a mapping")
        unknown = sorted(set(raw) - set(_FIELDS))
        if unknown:
            raise FaultError(f"unknown fault key(s): {', '.join(map(str, unknown))}")
        if "kind" not in raw:
            raise FaultError("a fault needs a kind")
        when = raw.get("when") or {}
        if not isinstance(when, Mapping):
            raise FaultError("fault when must be a mapping")
        seconds = raw.get("seconds")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float)):
            raise FaultError("fault seconds must be a number")
        return cls(
            kind=raw["kind"],
            code=raw.get("code"),
            times=raw.get("times", 1),
            when=dict(when),
            prompt_contains=raw.get("prompt_contains"),
            task_id=raw.get("task_id"),
            seconds=None if seconds is None else float(seconds),
            message=str(raw.get("message") or ""),
        )

    def matches(self, *, params: Mapping[str, Any] | None, prompt: str | None, task_id: str | None) -> bool:
        """True when this fault's conditions hold for a request (absent conditions always hold)."""
        if self.task_id is not None and task_id != self.task_id:
            return False
        if self.prompt_contains is not None and self.prompt_contains not in (prompt or ""):
            return False
        if self.when:
            norm = {normalise_key(k): normalise_value(v) for k, v in (params or {}).items()}
            return all(norm.get(k) == v for k, v in self.when.items())
        return True


@dataclass
class ArmedFault:
    """A fault as installed: its id, how many uses are left, and how often it fired."""

    id: int
    fault: Fault
    left: int | None
    hits: int = 0

    def to_json(self) -> dict[str, Any]:
        """The admin API's view of this fault."""
        f = self.fault
        return {
            "id": self.id,
            "kind": f.kind.value,
            "code": f.code,
            "times": f.times,
            "left": self.left,
            "hits": self.hits,
            "when": dict(f.when),
            "prompt_contains": f.prompt_contains,
            "task_id": f.task_id,
            "seconds": f.seconds,
            "message": f.message,
        }


class FaultSet:
    """The installed faults, consumed in the order they were added; used-up ones stay listed with left=0."""

    def __init__(self, faults: Iterable[Fault] = ()) -> None:
        self._ids = itertools.count(1)
        self._armed: list[ArmedFault] = []
        for fault in faults:
            self.add(fault)

    def add(self, fault: Fault | FaultKind | str, **kw: Any) -> ArmedFault:
        """Install a fault (a Fault, or a kind plus Fault fields); returns it with its id."""
        if not isinstance(fault, Fault):
            fault = Fault(kind=FaultKind(fault), **kw)
        elif kw:
            raise FaultError("give either a Fault or a kind with fields, not both")
        armed = ArmedFault(next(self._ids), fault, fault.times)
        self._armed.append(armed)
        return armed

    def remove(self, fault_id: int) -> bool:
        """Uninstall one fault; returns whether it was installed."""
        before = len(self._armed)
        self._armed = [a for a in self._armed if a.id != fault_id]
        return len(self._armed) != before

    def clear(self) -> None:
        self._armed.clear()

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(self._armed))

    def __len__(self) -> int:
        return len(self._armed)

    def take(
        self,
        kinds: Iterable[FaultKind],
        *,
        params: Mapping[str, Any] | None = None,
        prompt: str | None = None,
        task_id: str | None = None,
    ) -> Fault | None:
        """The first installed fault of these kinds that matches, used up once; None if none applies."""
        wanted = set(kinds)
        for armed in self._armed:
            if armed.left == 0 or armed.fault.kind not in wanted:
                continue
            if armed.fault.matches(params=params, prompt=prompt, task_id=task_id):
                armed.hits += 1
                if armed.left is not None:
                    armed.left -= 1
                return armed.fault
        return None
