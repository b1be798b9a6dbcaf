"""The fake Feishu's check of interactive card JSON, written from Feishu's documented card structure.

Card JSON 1.0: `config`, `header` (`title` a text object, `template` a colour), `elements` (modules: `div`,
`markdown`, `hr`, `img`, `note`, `action`, `column_set`, `form`); buttons live in an `action`, a `div`'s
`extra`, a column or a form. Card JSON 2.0 (`"schema": "2.0"`) puts the elements under `body.elements` and
has no `action` or `note` module (buttons stand on their own there).

The real server answers a card it cannot build with HTTP 400, code 230099 and a message of the form
"Failed to create card content, ext=ErrCode: 11310; ErrMsg: ...; ErrorValue: ...;". `problem(card)` returns
that message, or None for a card the server would take. Required fields, tag values and enumerations are
checked as documented. Unknown keys are refused too: the real server ignores some of them, which would hide
a misspelt field (the card would then show without it), and a test should see that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

CARD_ERROR_CODE = 230099
TEXT_TAGS = {"plain_text", "lark_md"}
TEMPLATES = {
    "blue",
    "wathet",
    "turquoise",
    "green",
    "yellow",
    "orange",
    "red",
    "carmine",
    "violet",
    "purple",
    "indigo",
    "grey",
    "default",
}
BUTTON_TYPES = {
    "default",
    "primary",
    "danger",
    "text",
    "primary_text",
    "danger_text",
    "primary_filled",
    "danger_filled",
    "laser",
}
IMG_MODES = {"crop_center", "fit_horizontal", "stretch", "large", "medium", "small", "tiny"}
ACTION_LAYOUTS = {"bisected", "trisection", "flow"}
MAX_ELEMENTS = 200  # modules in one card


class CardError(Exception):
    """A card the real server would refuse; str() is the ErrMsg/ErrorValue part."""

    def __init__(self, what: str, value: Any = "") -> None:
        super().__init__(f"ErrMsg: {what}; ErrorValue: {value};")


def problem(card: Any) -> str | None:
    """Returns the server's error message for card, or None when the server would build it."""
    try:
        _card(card)
    except CardError as exc:
        return f"Failed to create card content, ext=ErrCode: 11310; {exc}"
    return None


def _need(cond: bool, what: str, value: Any = "") -> None:
    if not cond:
        raise CardError(what, value)


def _keys(obj: Any, where: str, allowed: set[str], required: set[str] = frozenset()) -> Mapping[str, Any]:
    _need(isinstance(obj, dict), f"{where} must be an object", type(obj).__name__)
    unknown = set(obj) - allowed
    _need(not unknown, f"unknown property in {where}", ",".join(sorted(unknown)))
    missing = required - set(obj)
    _need(not missing, f"{where} lacks a required property", ",".join(sorted(missing)))
    return obj


def _bool(obj: Mapping[str, Any], key: str, where: str) -> None:
    if key in obj:
        _need(isinstance(obj[key], bool), f"{where}.{key} must be a boolean", obj[key])


def _card(card: Any) -> None:
    _need(isinstance(card, dict), "card must be an object", type(card).__name__)
    v2 = card.get("schema") == "2.0"
    top = {"config", "header", "card_link", "i18n_elements", "i18n_header", "fallback"}
    if v2:
        _keys(card, "card", top | {"schema", "body"}, {"body"})
        body = _keys(card["body"], "body", {"elements", "direction", "padding"}, {"elements"})
        elements = body["elements"]
    else:
        _keys(card, "card", top | {"elements"}, {"elements"})
        elements = card["elements"]
    if "config" in card:
        config = _keys(
            card["config"],
            "config",
            {"wide_screen_mode", "enable_forward", "update_multi", "width_mode", "streaming_mode", "summary"},
        )
        for key in ("wide_screen_mode", "enable_forward", "update_multi", "streaming_mode"):
            _bool(config, key, "config")
    if "header" in card:
        header = _keys(card["header"], "header", {"title", "subtitle", "template", "icon"}, {"title"})
        _text(header["title"], "header.title")
        if "template" in header:
            _need(header["template"] in TEMPLATES, "header.template is not a colour", header["template"])
    _need(isinstance(elements, list), "elements must be a list")
    _need(len(elements) <= MAX_ELEMENTS, "card element number over limit", len(elements))
    for element in elements:
        _element(element, v2, "elements")


def _text(obj: Any, where: str) -> None:
    text = _keys(obj, where, {"tag", "content", "lines", "text_size", "text_color", "text_align", "i18n"})
    _need(text.get("tag") in TEXT_TAGS, f"{where}.tag must be plain_text or lark_md", text.get("tag"))
    _need(isinstance(text.get("content"), str), f"{where}.content must be a string", text.get("content"))
    if "lines" in text:
        _need(isinstance(text["lines"], int) and text["lines"] > 0, f"{where}.lines must be >= 1")


def _element(el: Any, v2: bool, where: str) -> None:
    _need(isinstance(el, dict), f"{where}: an element must be an object")
    tag = el.get("tag")
    check = _CHECKS.get(tag)
    _need(check is not None, "unknown tag", tag)
    if v2:
        _need(tag not in ("action", "note"), "tag is not supported in card JSON 2.0", tag)
    else:
        _need(tag != "button" or where != "elements", "a button must be inside an action module", tag)
    check(el, v2, f"{where}.{tag}")


def _div(el: Mapping[str, Any], v2: bool, where: str) -> None:
    _keys(el, where, {"tag", "text", "fields", "extra", "element_id", "margin", "icon"})
    _need("text" in el or "fields" in el, f"{where} needs text or fields")
    if "text" in el:
        _text(el["text"], f"{where}.text")
    for field in el.get("fields", []):
        f = _keys(field, f"{where}.fields", {"is_short", "text"}, {"is_short", "text"})
        _bool(f, "is_short", where)
        _text(f["text"], f"{where}.fields.text")
    if "extra" in el:
        _element(el["extra"], v2, f"{where}.extra")


def _markdown(el: Mapping[str, Any], v2: bool, where: str) -> None:
    _keys(
        el, where, {"tag", "content", "text_align", "text_size", "href", "element_id", "margin"}, {"content"}
    )
    _need(isinstance(el["content"], str), f"{where}.content must be a string")


def _hr(el: Mapping[str, Any], v2: bool, where: str) -> None:
    _keys(el, where, {"tag", "element_id", "margin"})


def _img(el: Mapping[str, Any], v2: bool, where: str) -> None:
    allowed = {"tag", "img_key", "alt", "title", "mode", "preview", "custom_width", "compact_width"}
    _keys(
        el,
        where,
        allowed | {"element_id", "margin", "scale_type", "size", "corner_radius", "transparent"},
        {"img_key", "alt"},
    )
    _need(isinstance(el["img_key"], str) and el["img_key"] != "", f"{where}.img_key must be an image key")
    _text(el["alt"], f"{where}.alt")
    if "title" in el:
        _text(el["title"], f"{where}.title")
    if "mode" in el:
        _need(el["mode"] in IMG_MODES, f"{where}.mode is not a display mode", el["mode"])
    _bool(el, "preview", where)


def _note(el: Mapping[str, Any], v2: bool, where: str) -> None:
    _keys(el, where, {"tag", "elements"}, {"elements"})
    _need(isinstance(el["elements"], list) and el["elements"], f"{where}.elements must be a non-empty list")
    for item in el["elements"]:
        if isinstance(item, dict) and item.get("tag") == "img":
            _img(item, v2, f"{where}.img")
        else:
            _text(item, f"{where}.elements")


def _action(el: Mapping[str, Any], v2: bool, where: str) -> None:
    _keys(el, where, {"tag", "actions", "layout"}, {"actions"})
    _need(isinstance(el["actions"], list) and el["actions"], f"{where}.actions must be a non-empty list")
    if "layout" in el:
        _need(el["layout"] in ACTION_LAYOUTS, f"{where}.layout is not a layout", el["layout"])
    for item in el["actions"]:
        _need(isinstance(item, dict) and item.get("tag") == "button", f"{where}: unsupported interactive")
        _button(item, v2, f"{where}.button")


def _button(el: Mapping[str, Any], v2: bool, where: str) -> None:
    allowed = {"tag", "text", "type", "url", "multi_url", "value", "confirm", "size", "width", "icon"}
    allowed |= {"disabled", "disabled_tips", "hover_tips", "action_type", "name", "element_id", "behaviors"}
    _keys(el, where, allowed, {"text"})
    _text(el["text"], f"{where}.text")
    if "type" in el:
        _need(el["type"] in BUTTON_TYPES, f"{where}.type is not a button type", el["type"])
    if "url" in el:
        _need(isinstance(el["url"], str) and "://" in el["url"], f"{where}.url must be a URL", el["url"])
    if "multi_url" in el:
        links = _keys(el["multi_url"], f"{where}.multi_url", {"url", "android_url", "ios_url", "pc_url"})
        _need(all(isinstance(v, str) for v in links.values()), f"{where}.multi_url values must be strings")
    if "value" in el:
        _need(isinstance(el["value"], dict), f"{where}.value must be an object", el["value"])
    if "confirm" in el:
        confirm = _keys(el["confirm"], f"{where}.confirm", {"title", "text"}, {"title", "text"})
        _text(confirm["title"], f"{where}.confirm.title")
        _text(confirm["text"], f"{where}.confirm.text")
    _bool(el, "disabled", where)


def _column_set(el: Mapping[str, Any], v2: bool, where: str) -> None:
    allowed = {"tag", "columns", "flex_mode", "background_style", "horizontal_spacing", "horizontal_align"}
    _keys(el, where, allowed | {"margin", "element_id", "action"}, {"columns"})
    for column in el["columns"]:
        col = _keys(
            column,
            f"{where}.columns",
            {"tag", "width", "weight", "vertical_align", "elements", "padding", "background_style"},
            {"tag"},
        )
        _need(col["tag"] == "column", f"{where}.columns: tag must be column", col["tag"])
        for item in col.get("elements", []):
            _element(item, v2, f"{where}.column")


def _form(el: Mapping[str, Any], v2: bool, where: str) -> None:
    _keys(el, where, {"tag", "name", "elements", "element_id", "margin"}, {"name", "elements"})
    for item in el["elements"]:
        _element(item, v2, f"{where}.form")


def _input(el: Mapping[str, Any], v2: bool, where: str) -> None:
    allowed = {"tag", "name", "required", "placeholder", "default_value", "label", "label_position"}
    allowed |= {
        "max_length",
        "width",
        "input_type",
        "rows",
        "auto_resize",
        "element_id",
        "margin",
        "disabled",
    }
    _keys(el, where, allowed, {"name"})
    for key in ("placeholder", "label"):
        if key in el:
            _text(el[key], f"{where}.{key}")


_CHECKS: dict[Any, Callable[[Mapping[str, Any], bool, str], None]] = {
    "div": _div,
    "markdown": _markdown,
    "hr": _hr,
    "img": _img,
    "note": _note,
    "action": _action,
    "button": _button,
    "column_set": _column_set,
    "form": _form,
    "input": _input,
}
