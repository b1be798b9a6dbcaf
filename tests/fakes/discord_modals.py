"""The fake Discord's modals: the check of a MODAL interaction response (callback type 9) and the data of
the MODAL_SUBMIT interaction (type 5) a user's submit sends, both as Discord documents them.

A modal is `{custom_id, title, components}`: 1-5 top-level components, each a label (type 18) holding one
input, or (older, deprecated) an action row (type 1) holding one text input (type 4). Its submit carries
`{custom_id, components}` in the same layout, each input reduced to `{type, id, custom_id, value}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TITLE_CHARS = 45
CUSTOM_ID_CHARS = 100
TEXT_INPUT = 4
LABEL = 18
ACTION_ROW = 1


def problem(modal: Any) -> str | None:
    """Why Discord would refuse this modal response (a 400 "Invalid Form Body"), None when it is fine."""
    if not isinstance(modal, Mapping):
        return "data must be an object"
    title, custom_id, components = modal.get("title"), modal.get("custom_id"), modal.get("components")
    if not isinstance(title, str) or not 1 <= len(title) <= TITLE_CHARS:
        return f"data.title must be 1-{TITLE_CHARS} characters"
    if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= CUSTOM_ID_CHARS:
        return f"data.custom_id must be 1-{CUSTOM_ID_CHARS} characters"
    if not isinstance(components, list) or not 1 <= len(components) <= 5:
        return "data.components must hold 1-5 components"
    for c in components:
        inputs = _inputs(c)
        if inputs is None:
            return "a modal component must be a label or an action row holding one input"
        for i in inputs:
            if i.get("type") == TEXT_INPUT and not i.get("custom_id"):
                return "a text input needs a custom_id"
            if i.get("type") == TEXT_INPUT and c.get("type") == LABEL and i.get("label") is not None:
                return "a text input inside a label takes no label of its own"
        label = c.get("label")
        if c.get("type") == LABEL and not (isinstance(label, str) and 1 <= len(label) <= TITLE_CHARS):
            return f"a label's label must be 1-{TITLE_CHARS} characters"
    return None


def submit_data(modal: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """The MODAL_SUBMIT data for `modal` with `values` (text input custom_id -> typed text; "" for the
    ones not given)."""
    ids = iter(range(1, 1000))
    out = []
    for c in modal["components"]:
        (i,) = _inputs(c) or ()
        typed = {
            "type": i["type"],
            "id": next(ids),
            "custom_id": i["custom_id"],
            "value": values.get(i["custom_id"], ""),
        }
        if c.get("type") == LABEL:
            out.append({"type": LABEL, "id": next(ids), "component": typed})
        else:
            out.append({"type": ACTION_ROW, "id": next(ids), "components": [typed]})
    return {"custom_id": modal["custom_id"], "components": out}


def _inputs(component: Any) -> list[Mapping[str, Any]] | None:
    if not isinstance(component, Mapping):
        return None
    if component.get("type") == LABEL and isinstance(component.get("component"), Mapping):
        return [component["component"]]
    inner = component.get("components")
    if component.get("type") == ACTION_ROW and isinstance(inner, list) and len(inner) == 1:
        return [inner[0]] if isinstance(inner[0], Mapping) else None
    return None
