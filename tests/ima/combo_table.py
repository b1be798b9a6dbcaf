"""Said → chosen tables over the bundled emulator fixture: `python -m tests.ima.combo_table`.

For every combination of said duration and resolution (including "not said" and values no model
offers), the combination `ima.params.resolve` chooses, its rule and the English note the `ima` command
prints. The tests in test_combos.py pin these tables."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from ima.catalog import parse_products, select_leaf
from ima.cli.notes import note_text
from ima.cli.output import Console
from ima.emulator.config import Variants
from ima.emulator.products import load_trees, render_tree
from ima.models import ModelId, Product, TaskType
from ima.params import resolve

T2V = TaskType.TEXT_TO_VIDEO
DURATIONS: tuple[Any, ...] = (None, 5, 7, 10, 15, 20)
RESOLUTIONS: tuple[Any, ...] = (None, "480p", "720p", "1080p", "4K")


def bundled(variants: Variants | None = None, task_type: TaskType = T2V) -> dict[str, Product]:
    """The bundled fixture's rule shapes, served with `variants` (default: the canonical spelling)."""
    tree = render_tree(load_trees()[task_type.value], variants or Variants())
    leaves = parse_products(tree, category=task_type.value)
    return {
        "full grid — ima-pro-fast (480p/720p × 5/10/15 s)": select_leaf(leaves, ModelId.FAST),
        "holed grid — ima-pro (1080p only at 5 and 10 s)": select_leaf(leaves, ModelId.PRO),
        "default rule — ima-pro-v0 (fallback rule + 720p at 5/10 s)": select_leaf(
            leaves, ModelId.PRO, version="ima-pro-v0"
        ),
    }


def said_of(duration: Any, resolution: Any) -> dict[str, Any]:
    return {k: v for k, v in (("duration", duration), ("resolution", resolution)) if v is not None}


def chosen(product: Product, said: Mapping[str, Any]) -> tuple[str, str, int]:
    """(duration, resolution, attribute_id) as normalised text: what resolve sends for `said`."""
    r = resolve(product, T2V, said)
    return str(r.params["duration"]), str(r.params["resolution"]).lower(), r.rule.attribute_id


def _show(value: Any, unit: str = "") -> str:
    return "—" if value is None else f"{value}{unit}"


def table(title: str, product: Product, console: Console) -> list[str]:
    lines = [f"## {title}", "", "| said | chosen | rule · credits | note |", "|---|---|---|---|"]
    for duration in DURATIONS:
        for resolution in RESOLUTIONS:
            r = resolve(product, T2V, said_of(duration, resolution))
            said = f"{_show(duration, ' s')} · {_show(resolution)}"
            got = f"{r.params['duration']} s · {r.params['resolution']}"
            notes = "; ".join(note_text(console, n) for n in r.notes) or ""
            lines.append(f"| {said} | {got} | {r.rule.attribute_id} · {r.credit} | {notes} |")
    return [*lines, ""]


def main() -> int:
    console = Console("en")
    for title, product in bundled().items():
        sys.stdout.write("\n".join(table(title, product, console)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
