"""The server side of task creation: value normalisation, rule computation and the create checks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

TEXT_TO_VIDEO = "text_to_video"
IMAGE_TO_VIDEO = "image_to_video"
FIRST_LAST = "first_last_frame_to_video"
REFERENCE = "reference_image_to_video"
MAX_N = 4

NO_RULE, ATTRIBUTE_MISMATCH, CREDIT_MISMATCH, INSUFFICIENT = 6009, 6010, 6006, 4008


class Rejection(Exception):
    """A create the server refuses: the business code and its message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class CreateCodes(Protocol):
    """The configurable codes create checks answer with (see config.Codes)."""

    bad_request: int
    model_not_found: int
    media_mismatch: int


@dataclass(frozen=True)
class Order:
    """A create that passed every check: what to run and what it costs."""

    task_type: str
    leaf: Mapping[str, Any]
    rule: Mapping[str, Any]
    params: Mapping[str, Any]
    n: int
    prompt: str

    @property
    def cost(self) -> int:
        return int(self.rule["points"]) * self.n


def normalise_key(key: Any) -> str:
    """The comparison form of a parameter name: trimmed, lowercased."""
    return str(key).strip().lower()


def normalise_value(value: Any) -> str:
    """The comparison form of a value: bools as "true"/"false", anything else str, trimmed, uppercased."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().upper()


def is_default_rule(rule: Mapping[str, Any]) -> bool:
    """True for a rule carrying the `default: enabled` fallback marker."""
    attrs = rule.get("attributes") or {}
    return any(normalise_key(k) == "default" and normalise_value(v) == "ENABLED" for k, v in attrs.items())


def compute_rule(rules: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The rule the server derives from inner params: first exact match, else the default rule, else None."""
    norm = {normalise_key(k): normalise_value(v) for k, v in params.items()}
    fallback = None
    for rule in rules:
        if is_default_rule(rule):
            fallback = fallback or rule
            continue
        conditions = {normalise_key(k): normalise_value(v) for k, v in (rule.get("attributes") or {}).items()}
        if conditions and all(k in norm and norm[k] == v for k, v in conditions.items()):
            return rule
    return fallback


def iter_leaves(nodes: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Every version leaf (type "3") of a product tree, depth-first in list order."""
    for node in nodes:
        if str(node.get("type")) == "3":
            yield node
        yield from iter_leaves(node.get("children") or [])


def find_leaf(nodes: Sequence[Mapping[str, Any]], model_id: Any, version: Any) -> Mapping[str, Any] | None:
    """The leaf whose raw model_id and id equal the payload's model_id and model_version, or None."""
    for leaf in iter_leaves(nodes):
        if leaf.get("model_id") == model_id and leaf.get("id") == version:
            return leaf
    return None


def check_create(body: Any, trees: Mapping[str, Sequence[Mapping[str, Any]]], codes: CreateCodes) -> Order:
    """The order a create body describes, checked as the server would; raises Rejection otherwise.

    Order of checks (contract §13): shape and task_type == category → leaf → rule (6009) →
    attribute_id (6010) → credit and cast (6006) → media. The balance (4008) is the caller's.
    """
    if not isinstance(body, Mapping):
        raise Rejection(codes.bad_request, "request body must be a JSON object")
    outer = body.get("parameters")
    if not isinstance(outer, list) or len(outer) != 1 or not isinstance(outer[0], Mapping):
        raise Rejection(codes.bad_request, "parameters must be a list with exactly one object")
    p = outer[0]
    task_type = body.get("task_type")
    if task_type not in trees:
        raise Rejection(codes.bad_request, f"unsupported task_type {task_type!r}")
    if p.get("category") != task_type:
        raise Rejection(codes.bad_request, "task_type does not match parameters[0].category")
    if p.get("app") != "ima" or p.get("platform") != "web":
        raise Rejection(codes.bad_request, "parameters[0].app must be 'ima' and platform 'web'")
    if not p.get("model_name"):
        raise Rejection(codes.bad_request, "wrong routing: parameters[0].model_name is missing")
    leaf = find_leaf(trees[task_type], p.get("model_id"), p.get("model_version"))
    if leaf is None:
        raise Rejection(codes.model_not_found, "no product for this model_id and model_version")
    inner = p.get("parameters")
    if not isinstance(inner, Mapping):
        raise Rejection(codes.bad_request, "parameters[0].parameters must be an object")
    n = _count(inner.get("n"), codes)
    rule = compute_rule(leaf.get("credit_rules") or [], inner)
    if rule is None:
        raise Rejection(NO_RULE, "No matching credit rule for the given parameters")
    if not _same_int(p.get("attribute_id"), rule["attribute_id"]):
        raise Rejection(ATTRIBUTE_MISMATCH, "Attribute ID does not match the calculated rule")
    cast = inner.get("cast")
    if not _same_int(p.get("credit"), rule["points"]):
        raise Rejection(CREDIT_MISMATCH, "Credit does not match the rule's points")
    if (
        not isinstance(cast, Mapping)
        or not _same_int(cast.get("points"), rule["points"])
        or not _same_int(cast.get("attribute_id"), rule["attribute_id"])
    ):
        raise Rejection(CREDIT_MISMATCH, "Billing validation failed: cast does not match the rule")
    prompt = inner.get("prompt")
    prompt = prompt if isinstance(prompt, str) else ""
    if task_type == TEXT_TO_VIDEO and not prompt.strip():
        raise Rejection(codes.bad_request, "prompt is required for text_to_video")
    _check_media(task_type, body, inner, codes.media_mismatch)
    return Order(task_type, leaf, rule, dict(inner), n, prompt)


def _count(raw: Any, codes: CreateCodes) -> int:
    if raw is None or raw == "":
        return 1
    try:
        n = int(raw)
    except (TypeError, ValueError):
        raise Rejection(codes.bad_request, "n must be an integer") from None
    if isinstance(raw, bool) or not 1 <= n <= MAX_N:
        raise Rejection(codes.bad_request, f"n must be between 1 and {MAX_N}")
    return n


def _same_int(given: Any, expected: Any) -> bool:
    if isinstance(given, bool) or not isinstance(given, int | str):
        return False
    try:
        return int(given) == int(expected)
    except ValueError:
        return False


def _urls(raw: Any, what: str, code: int) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(u, str) and u for u in raw):
        raise Rejection(code, f"{what} must be a list of URLs")
    return list(raw)


def _item_urls(raw: Any, what: str, code: int) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(i, Mapping) and i.get("url") for i in raw):
        raise Rejection(code, f"{what} must be a list of objects with a url")
    return [str(i["url"]) for i in raw]


def _check_media(task_type: str, body: Mapping[str, Any], inner: Mapping[str, Any], code: int) -> None:
    inputs = _urls(inner.get("input_images"), "input_images", code)
    images = _urls(body.get("src_img_url"), "src_img_url", code)
    videos = _item_urls(body.get("src_video"), "src_video", code)
    audios = _item_urls(body.get("src_audio"), "src_audio", code)
    if task_type == TEXT_TO_VIDEO:
        if inputs or images or videos or audios:
            raise Rejection(code, "text_to_video takes no input media")
        return
    if (videos or audios) and task_type != REFERENCE:
        raise Rejection(code, "only reference_image_to_video accepts video or audio references")
    if videos or audios:
        every = [*images, *videos, *audios]
        if any(u not in inputs for u in every) or any(u not in every for u in inputs):
            raise Rejection(code, "input_images must list every src_img_url, src_video and src_audio URL")
    elif images != inputs:
        raise Rejection(code, "src_img_url must mirror parameters[0].parameters.input_images")
    if task_type == IMAGE_TO_VIDEO and not images:
        raise Rejection(code, "image_to_video needs at least one image")
    if task_type == FIRST_LAST and len(images) != 2:
        raise Rejection(code, "first_last_frame_to_video needs exactly 2 images (first, last)")
    if task_type == REFERENCE and not (1 <= len(images) + len(videos) + len(audios) and len(images) <= 9):
        raise Rejection(code, "reference_image_to_video needs 1 to 9 images or other references")
