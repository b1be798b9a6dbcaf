"""What a submitted Discord modal carries (pure): the text typed into one of its inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PROMPT_FIELD = "prompt"  # Continue ▶'s text input (modals.py)


def submitted_text(components: Sequence[Mapping[str, Any]], field: str = PROMPT_FIELD) -> str:
    """The value typed into text input `field` of a modal submit's components ("" when absent). Pure.

    Reads both layouts Discord sends back: a label (type 18) holding the input, and the older action
    row (type 1) holding it."""
    for component in components:
        if not isinstance(component, Mapping):
            continue
        inner: Any = component.get("components")
        if component.get("type") == 18:
            inner = [component.get("component")]
        if isinstance(inner, Sequence) and not isinstance(inner, str):
            found = submitted_text(inner, field)
            if found:
                return found
        elif component.get("custom_id") == field and isinstance(component.get("value"), str):
            return component["value"]
    return ""


__all__ = ["PROMPT_FIELD", "submitted_text"]
