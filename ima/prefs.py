"""The vendor-compatible preferences file: the last model used per user and task type."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import ImaUsageError
from .models import ModelId

DEFAULT_PREFS_PATH = "~/.openclaw/memory/ima_prefs.json"


def user_key(user_id: str) -> str:
    """The top-level key of one user's entries: `user_<id>`."""
    return f"user_{user_id}"


def load_prefs(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The whole preferences file; a missing, unreadable, corrupt or non-object file reads as `{}`."""
    try:
        data = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def get_preferred_model(
    prefs: Mapping[str, Any],
    user_id: str,
    task_type: str,
    normalize: Callable[[str], ModelId],
) -> ModelId | None:
    """The stored model for (user, task type) if it normalises to an allowed id, else None."""
    entry = prefs.get(user_key(user_id))
    entry = entry.get(task_type) if isinstance(entry, Mapping) else None
    model = entry.get("model_id") if isinstance(entry, Mapping) else None
    if not isinstance(model, str):
        return None
    try:
        return normalize(model)
    except ImaUsageError:
        return None


def with_recent_use(
    prefs: Mapping[str, Any],
    user_id: str,
    task_type: str,
    model_id: ModelId,
    credit: int,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A copy of `prefs` recording that `user_id` just used `model_id` for `task_type` (vendor shape)."""
    out = dict(prefs)
    key = user_key(user_id)
    user = dict(out[key]) if isinstance(out.get(key), Mapping) else {}
    user[str(task_type)] = {
        "model_id": model_id.value,
        "model_name": model_id.display_name,
        "credit": credit,
        "last_used": (now or datetime.now(UTC)).isoformat(),
    }
    out[key] = user
    return out


def save_prefs(path: str | os.PathLike[str], prefs: Mapping[str, Any]) -> None:
    """Writes `prefs` atomically (temp file in the same directory, fsync, rename). Raises OSError."""
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(prefs, indent=2, ensure_ascii=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
