"""Model-name normalisation: ids, Sevio display names and aliases (en/zh) → the two allowed ModelIds."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources

from .errors import ModelNotAllowed
from .models import DISPLAY_NAMES, ModelId

ALLOWED_MODELS: tuple[ModelId, ...] = (ModelId.PRO, ModelId.FAST)


def _fold(name: str) -> str:
    return re.sub(r"\s+", " ", str(name).strip().lower())


@cache
def get_aliases() -> Mapping[str, ModelId]:
    """The alias table from `aliases.json`: folded name → model id (no I/O after the first call)."""
    raw = json.loads(resources.files(__package__).joinpath("aliases.json").read_text(encoding="utf-8"))
    table: dict[str, ModelId] = {}
    for model in ALLOWED_MODELS:
        for alias in raw[model.value]:
            table[_fold(alias)] = model
    return table


def match_model_id(name: str) -> ModelId | None:
    """The allowed model `name` denotes, or None (used for leaf `model_id`s, which may be anything)."""
    return get_aliases().get(_fold(name))


def normalize_model_id(name: str) -> ModelId:
    """The ModelId for an id, a Sevio display name or an alias (case and spacing ignored).

    Raises ModelNotAllowed (an ImaUsageError) naming the two allowed models for anything else."""
    model = match_model_id(name)
    if model is None:
        allowed = ", ".join(f"{m.value} ({DISPLAY_NAMES[m]})" for m in ALLOWED_MODELS)
        raise ModelNotAllowed(
            f"Model {str(name).strip()!r} is not allowed; use one of: {allowed}",
            hint=f"Only these models are available: {allowed}.",
            requested=str(name),
            allowed=[m.value for m in ALLOWED_MODELS],
        )
    return model
