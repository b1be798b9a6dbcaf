"""Product trees: loaded from the JSON fixture, served in the spelling the variants ask for."""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from .config import DurationType, EmulatorConfigError, ResolutionCase, Variants

Tree = list[dict[str, Any]]


def load_trees(path: str | Path | None = None) -> dict[str, Tree]:
    """The product tree per category from a fixture file (the bundled one by default).

    Raises EmulatorConfigError if the file is unreadable or lacks a `categories` mapping.
    """
    try:
        if path is None:
            text = resources.files(__package__).joinpath("fixtures/products.json").read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        doc = json.loads(text)
    except (OSError, json.JSONDecodeError) as exc:
        raise EmulatorConfigError(f"cannot load product fixture: {exc}") from None
    categories = doc.get("categories") if isinstance(doc, Mapping) else None
    if not isinstance(categories, Mapping) or not all(isinstance(t, list) for t in categories.values()):
        raise EmulatorConfigError("product fixture needs a 'categories' mapping of lists")
    return {str(k): v for k, v in categories.items()}


def render_tree(
    tree: Sequence[Mapping[str, Any]], variants: Variants, model_ids: Collection[str] = ()
) -> Tree:
    """A served copy of a canonical tree: filtered by model_ids (if any), respelled, maybe under a root."""
    nodes = [n for n in (_render(node, variants, set(model_ids)) for node in tree) if n is not None]
    if variants.root_level:
        return [{"id": "root", "type": "1", "name": "Video", "model_id": "", "children": nodes}]
    return nodes


def _render(node: Mapping[str, Any], variants: Variants, model_ids: set[str]) -> dict[str, Any] | None:
    out = copy.deepcopy(dict(node))
    if str(out.get("type")) == "3":
        if model_ids and out.get("model_id") not in model_ids:
            return None
        out["credit_rules"] = [_respell_rule(r, variants) for r in out.get("credit_rules") or []]
        return out
    if "children" in out:
        kids = [k for k in (_render(c, variants, model_ids) for c in node.get("children") or []) if k]
        if model_ids and not kids:
            return None
        out["children"] = kids
    return out


def _respell_rule(rule: dict[str, Any], variants: Variants) -> dict[str, Any]:
    attrs = dict(rule.get("attributes") or {})
    if "duration" in attrs:
        text = str(attrs["duration"]).strip()
        attrs["duration"] = (
            int(text) if variants.duration_type is DurationType.NUMBER and text.isdigit() else text
        )
    if isinstance(attrs.get("resolution"), str):
        res = attrs["resolution"]
        attrs["resolution"] = res.upper() if variants.resolution_case is ResolutionCase.UPPER else res.lower()
    return {**rule, "attributes": attrs}
