"""The fake Discord's check of message bodies, written from Discord's documented limits.

Discord refuses a create or edit whose content, embeds or components break a limit with HTTP 400,
`{"code": 50035, "message": "Invalid Form Body", "errors": {...}}` (the errors tree names the field path),
and a create with nothing to show with 50006 "Cannot send an empty message". `problem(body, files=...)`
returns that answer's JSON, or None for a body Discord would take.

Checked: content ≤ 2000 characters; ≤ 10 embeds, each with title ≤ 256, description ≤ 4096, ≤ 25 fields
(name ≤ 256, value ≤ 1024), footer text ≤ 2048, author name ≤ 256, colour 0..0xFFFFFF, http(s) URLs, and
≤ 6000 characters of text over all embeds; ≤ 5 action rows of 1-5 buttons; a button's style 1-5, label ≤ 80,
custom_id 1-100 characters and unique in the message (never on a link button), a link button's url ≤ 512;
allowed_mentions parse values.
"""

from __future__ import annotations

from typing import Any

INVALID_FORM_BODY = 50035
EMPTY_MESSAGE = 50006
CONTENT_LIMIT = 2000
EMBED_LIMITS = {"title": 256, "description": 4096}
EMBEDS_TOTAL = 6000
MAX_EMBEDS = 10
MAX_ROWS = 5
MAX_PER_ROW = 5
LABEL_LIMIT = 80
CUSTOM_ID_LIMIT = 100
URL_LIMIT = 512
LINK_STYLE = 5


class _Invalid(Exception):
    def __init__(self, path: str, code: str, message: str) -> None:
        super().__init__(path)
        self.path, self.code, self.message = path, code, message


def _need(cond: bool, path: str, code: str, message: str) -> None:
    if not cond:
        raise _Invalid(path, code, message)


def _errors_tree(path: str, code: str, message: str) -> dict[str, Any]:
    tree: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path.split(".")):
        tree = {part: tree}
    return tree


def problem(body: Any, *, files: int = 0, creating: bool = True) -> dict[str, Any] | None:
    """Returns Discord's error JSON for a message body (create or edit), or None when it is valid."""
    if not isinstance(body, dict):
        return None
    try:
        _message(body)
    except _Invalid as exc:
        return {
            "code": INVALID_FORM_BODY,
            "message": "Invalid Form Body",
            "errors": _errors_tree(exc.path, exc.code, exc.message),
        }
    shows = body.get("content") or body.get("embeds") or body.get("components") or body.get("sticker_ids")
    if creating and not shows and not files and not body.get("poll"):
        return {"code": EMPTY_MESSAGE, "message": "Cannot send an empty message"}
    return None


def _message(body: dict[str, Any]) -> None:
    content = body.get("content")
    if content is not None:
        _need(isinstance(content, str), "content", "BASE_TYPE_STRING", "Must be a string.")
        _need(
            len(content) <= CONTENT_LIMIT,
            "content",
            "BASE_TYPE_MAX_LENGTH",
            f"Must be {CONTENT_LIMIT} or fewer in length.",
        )
    embeds = body.get("embeds") or []
    _need(len(embeds) <= MAX_EMBEDS, "embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    for i, embed in enumerate(embeds):
        total += _embed(embed, f"embeds.{i}")
    _need(
        total <= EMBEDS_TOTAL, "embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
    )
    rows = body.get("components") or []
    _need(len(rows) <= MAX_ROWS, "components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
    seen: set[str] = set()
    for i, row in enumerate(rows):
        _row(row, f"components.{i}", seen)
    mentions = body.get("allowed_mentions")
    if mentions is not None:
        for value in mentions.get("parse", []):
            _need(
                value in ("users", "roles", "everyone"),
                "allowed_mentions.parse",
                "ENUM_TYPE_COERCE",
                f"Value '{value}' is not a valid enum value.",
            )


def _url(value: Any, path: str) -> None:
    _need(
        isinstance(value, str) and value.startswith(("http://", "https://", "attachment://")),
        path,
        "URL_TYPE_INVALID_URL",
        "Not a well formed URL.",
    )


def _max(text: Any, limit: int, path: str) -> int:
    _need(isinstance(text, str), path, "BASE_TYPE_STRING", "Must be a string.")
    _need(len(text) <= limit, path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
    return len(text)


def _embed(embed: dict[str, Any], path: str) -> int:
    size = 0
    for key, limit in EMBED_LIMITS.items():
        if embed.get(key) is not None:
            size += _max(embed[key], limit, f"{path}.{key}")
    if embed.get("url") is not None:
        _url(embed["url"], f"{path}.url")
    color = embed.get("color")
    if color is not None:
        _need(
            isinstance(color, int) and 0 <= color <= 0xFFFFFF,
            f"{path}.color",
            "NUMBER_TYPE_MAX",
            "int value should be less than or equal to 16777215.",
        )
    for part in ("image", "thumbnail"):
        if embed.get(part) is not None:
            _url(embed[part].get("url"), f"{path}.{part}.url")
    if embed.get("footer") is not None:
        size += _max(embed["footer"].get("text"), 2048, f"{path}.footer.text")
    if embed.get("author") is not None:
        size += _max(embed["author"].get("name"), 256, f"{path}.author.name")
    fields = embed.get("fields") or []
    _need(len(fields) <= 25, f"{path}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    for j, field in enumerate(fields):
        size += _max(field.get("name"), 256, f"{path}.fields.{j}.name")
        size += _max(field.get("value"), 1024, f"{path}.fields.{j}.value")
    return size


def _row(row: dict[str, Any], path: str, seen: set[str]) -> None:
    _need(row.get("type") == 1, f"{path}.type", "COMPONENT_INVALID_TYPE", "Top-level must be an action row.")
    items = row.get("components") or []
    _need(
        1 <= len(items) <= MAX_PER_ROW,
        f"{path}.components",
        "BASE_TYPE_BAD_LENGTH",
        "Must be between 1 and 5 in length.",
    )
    for k, item in enumerate(items):
        where = f"{path}.components.{k}"
        _need(item.get("type") == 2, f"{where}.type", "COMPONENT_INVALID_TYPE", "Only buttons are expected.")
        _button(item, where, seen)


def _button(item: dict[str, Any], where: str, seen: set[str]) -> None:
    style = item.get("style")
    _need(style in (1, 2, 3, 4, 5), f"{where}.style", "ENUM_TYPE_COERCE", f"Value '{style}' is not valid.")
    if item.get("label") is not None:
        _max(item["label"], LABEL_LIMIT, f"{where}.label")
    custom_id = item.get("custom_id")
    if style == LINK_STYLE:
        _need(
            custom_id is None,
            f"{where}.custom_id",
            "BUTTON_LINK_CUSTOM_ID",
            "A link button has no custom_id.",
        )
        _url(item.get("url"), f"{where}.url")
        _max(item["url"], URL_LIMIT, f"{where}.url")
        return
    _need(item.get("url") is None, f"{where}.url", "BUTTON_URL_NOT_LINK", "Only link buttons have a url.")
    _need(
        isinstance(custom_id, str) and 1 <= len(custom_id) <= CUSTOM_ID_LIMIT,
        f"{where}.custom_id",
        "BASE_TYPE_BAD_LENGTH",
        "Must be between 1 and 100 in length.",
    )
    _need(
        custom_id not in seen,
        f"{where}.custom_id",
        "COMPONENT_CUSTOM_ID_DUPLICATED",
        "Custom id is duplicated.",
    )
    seen.add(custom_id)
