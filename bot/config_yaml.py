"""The config file's YAML loader: ${VAR} expansion, and ratios such as 16:9 kept as strings."""

from __future__ import annotations

import os
import re
from typing import Any

import yaml

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_INT_TAG, _FLOAT_TAG = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"


class ConfigLoader(yaml.SafeLoader):
    """A private SafeLoader (the global one stays as is) that expands ${VAR} and ${VAR:-default} in
    scalars and reads `16:9` as the string it looks like, not YAML 1.1's base-60 number 969."""


# YAML 1.1 reads digits joined by colons as base 60 (16:9 -> 969, 9:16 -> 556). A value with a colon is
# never a number here, so the int and float resolvers are given a guard that refuses any colon.
ConfigLoader.yaml_implicit_resolvers = {
    first: [
        (tag, re.compile(r"(?!.*:)" + rx.pattern, rx.flags) if tag in (_INT_TAG, _FLOAT_TAG) else rx)
        for tag, rx in resolvers
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _expand(loader: ConfigLoader, node: yaml.ScalarNode) -> Any:
    raw = loader.construct_scalar(node)
    missing: list[str] = []

    def sub(m: re.Match[str]) -> str:
        value = os.environ.get(m.group(1))
        if value is None:
            if m.group(2) is None:
                missing.append(m.group(1))
                return ""
            return m.group(2)
        return value

    if "${" not in raw:
        return raw
    text = _ENV.sub(sub, raw)
    if missing:
        # Kept as a marker so the error can name the dotted key, not just the variable.
        return Missing(missing[0])
    if node.style is None and text.strip():
        # An unquoted value is typed as YAML types it once expanded (numbers, booleans, null).
        try:
            return yaml.load(text, Loader=ConfigLoader)
        except yaml.YAMLError:
            return text
    return text


class Missing(str):
    """A ${VAR} whose variable is unset: kept so the error can name the dotted key."""

    def __new__(cls, var: str) -> Missing:
        obj = super().__new__(cls, "")
        obj.var = var  # type: ignore[attr-defined]
        return obj


ConfigLoader.add_constructor("tag:yaml.org,2002:str", _expand)
