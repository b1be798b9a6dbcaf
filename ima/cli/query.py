"""`ima products` and `ima status`: read-only calls, rendered as text or JSON."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from ..aliases import match_model_id
from ..models import Product, Task, TaskType
from .output import EXIT_OK, Console


class _QueryClient(Protocol):
    async def fetch_products(self, task_type: TaskType, *, refresh: bool = False) -> list[Product]: ...
    async def fetch_task(self, task_id: str) -> Task: ...


def allowed_products(products: Iterable[Product]) -> list[Product]:
    """The leaves whose model_id is one of the two allowed models, in product-list order."""
    return [p for p in products if match_model_id(p.model_id) is not None]


def _option_values(options: Any) -> list[Any]:
    if not isinstance(options, list):
        return []
    return [o.get("value") if isinstance(o, Mapping) else o for o in options]


def describe_options(form_config: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each form field as {"field", "default", "options"} (virtual fields add "ui_params")."""
    out = []
    for entry in form_config:
        if not isinstance(entry, Mapping) or not entry.get("field"):
            continue
        item: dict[str, Any] = {
            "field": entry["field"],
            "default": entry.get("value"),
            "options": _option_values(entry.get("options")),
        }
        if entry.get("is_ui_virtual"):
            item["ui_params"] = [
                {
                    "field": ui.get("field") or ui.get("id"),
                    "default": ui.get("value"),
                    "options": _option_values(ui.get("options")),
                }
                for ui in entry.get("ui_params") or []
                if isinstance(ui, Mapping)
            ]
        out.append(item)
    return out


def product_to_json(category: str, product: Product) -> dict[str, Any]:
    """One allowed leaf as the `ima products --json` object."""
    model = match_model_id(product.model_id)
    return {
        "category": category,
        "model_id": model.value if model else product.model_id,
        "model_name": model.display_name if model else product.name,
        "version_id": product.id,
        "name": product.name,
        "options": describe_options(product.form_config),
        "credit_rules": [
            {"attribute_id": r.attribute_id, "points": r.points, "attributes": dict(r.attributes)}
            for r in product.credit_rules
        ],
    }


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "-" if value is None else str(value)


def format_products(console: Console, category: str, items: Sequence[Mapping[str, Any]]) -> list[str]:
    """The human table for one category's allowed leaves (as product_to_json gives them)."""
    if not items:
        return [console.text("products_none", category=category)]
    lines = [console.text("products_title", category=category, count=len(items))]
    for item in items:
        lines.append(
            console.text(
                "products_model", **{k: item[k] for k in ("model_name", "model_id", "version_id", "name")}
            )
        )
        lines.append(console.text("products_options"))
        for opt in item["options"]:
            choices = ", ".join(_fmt(v) for v in opt["options"])
            lines.append(f"    {opt['field']:<14} {_fmt(opt['default']):<8} {choices}")
            for ui in opt.get("ui_params", []):
                ui_choices = ", ".join(_fmt(v) for v in ui["options"])
                lines.append(f"      ↳ {ui['field']:<12} {_fmt(ui['default']):<8} {ui_choices}")
        lines.append(console.text("products_rules"))
        for rule in item["credit_rules"]:
            attrs = rule["attributes"]
            if str(attrs.get("default", "")).lower() == "enabled":
                cond = console.text("products_default_rule")
            else:
                cond = ", ".join(f"{k}={_fmt(v)}" for k, v in attrs.items())
            lines.append(f"    {rule['attribute_id']:>8}: {rule['points']:>4} ← {cond}")
    return lines


async def run_products(
    args: argparse.Namespace, console: Console, client: _QueryClient, log: logging.Logger
) -> int:
    """Prints the allowed models per category; returns the exit code. Raises ImaError from the client."""
    categories = [TaskType(args.category)] if args.category else list(TaskType)
    collected: list[dict[str, Any]] = []
    for category in categories:
        products = await client.fetch_products(category)
        items = [product_to_json(category.value, p) for p in allowed_products(products)]
        log.info("products category=%s leaves=%d allowed=%d", category.value, len(products), len(items))
        collected.extend(items)
        if not console.json_mode:
            for line in format_products(console, category.value, items):
                console.line(line)
    if console.json_mode:
        console.emit_json({"products": collected})
    return EXIT_OK


def task_to_json(task: Task) -> dict[str, Any]:
    """The `ima status --output-json` object."""
    return {
        "task_id": task.id,
        "state": task.state.value,
        "url": task.url,
        "cover_url": task.cover_url,
        "error": task.error,
    }


async def run_status(
    args: argparse.Namespace, console: Console, client: _QueryClient, log: logging.Logger
) -> int:
    """Prints one task's state, URL and cover (one detail call); returns the exit code."""
    task = await client.fetch_task(args.task_id)
    log.info("status task_id=%s state=%s", task.id, task.state.value)
    body = task_to_json(task)
    if console.json_mode:
        console.emit_json(body)
        return EXIT_OK
    console.line(console.text("status_state", task_id=body["task_id"] or args.task_id, state=body["state"]))
    if body["url"]:
        console.line(console.text("result_url", url=body["url"]))
    if body["cover_url"]:
        console.line(console.text("result_cover", cover_url=body["cover_url"]))
    if body["error"]:
        console.line(console.text("status_error", error=body["error"]))
    return EXIT_OK
