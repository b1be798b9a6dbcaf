"""User-facing texts: locales/{zh,en}.yaml, loaded once, looked up by dotted key."""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

LOCALES = ("en", "zh")
_DIR = Path(__file__).with_name("locales")


def _flatten(prefix: str, node: Any, out: dict[str, str]) -> None:
    if isinstance(node, Mapping):
        for k, v in node.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = str(node)


def placeholders(template: str) -> set[str]:
    """The `{name}` fields a template uses."""
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


class Texts:
    """Looks up and formats a text; an unknown locale falls back to English."""

    def __init__(self, tables: Mapping[str, Mapping[str, str]]) -> None:
        self._tables = tables

    @classmethod
    def load(cls, directory: Path = _DIR) -> Texts:
        """Reads locales/{loc}.yaml and every locales/{loc}/*.yaml beside it (one file per area, so texts
        stay near their topic); a key defined twice is an error naming both files."""
        tables = {}
        for loc in LOCALES:
            flat: dict[str, str] = {}
            where: dict[str, Path] = {}
            files = [directory / f"{loc}.yaml", *sorted((directory / loc).glob("*.yaml"))]
            for path in files:
                if not path.is_file():
                    continue
                part: dict[str, str] = {}
                _flatten("", yaml.safe_load(path.read_text(encoding="utf-8")) or {}, part)
                for key in part.keys() & flat.keys():
                    raise ValueError(f"text {key!r} is defined in both {where[key].name} and {path.name}")
                flat.update(part)
                where.update(dict.fromkeys(part, path))
            tables[loc] = flat
        return cls(tables)

    def keys(self, locale: str) -> set[str]:
        return set(self._tables.get(locale, {}))

    def has(self, key: str) -> bool:
        return key in self._tables["en"]

    def __call__(self, key: str, locale: str = "en", /, **params: Any) -> str:
        """Returns the text for key in locale, formatted with params. Raises KeyError for an unknown key."""
        table = self._tables.get(locale) or self._tables["en"]
        template = table.get(key)
        if template is None:
            template = self._tables["en"][key]
        return template.format(**params) if params else template

    def section(self, prefix: str, locale: str) -> dict[str, str]:
        """All texts under a dotted prefix, keyed by the rest of the key (for adapters' label tables)."""
        table = self._tables.get(locale) or self._tables["en"]
        p = prefix + "."
        return {k[len(p) :]: v for k, v in table.items() if k.startswith(p)}
