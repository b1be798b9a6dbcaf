"""Typed, env-expanded configuration; every error names the dotted key it is about."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class _EnvLoader(yaml.SafeLoader):
    """A private SafeLoader that expands ${VAR} and ${VAR:-default} in scalars (the global loader stays as is)."""


def _expand(loader: _EnvLoader, node: yaml.ScalarNode) -> Any:
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
        return _Missing(missing[0])
    if node.style is None and text.strip():
        # An unquoted value is typed as YAML types it once expanded (numbers, booleans, null).
        return yaml.safe_load(text)
    return text


class _Missing(str):
    def __new__(cls, var: str) -> _Missing:
        obj = super().__new__(cls, "")
        obj.var = var  # type: ignore[attr-defined]
        return obj


_EnvLoader.add_constructor("tag:yaml.org,2002:str", _expand)


@dataclass(frozen=True)
class ImaSettings:
    api_key: str = ""
    base_url: str = "https://api.imastudio.com"
    upload_base_url: str = "https://imapi.liveme.com"
    language: str = "en"
    catalog_ttl: float = 600.0


@dataclass(frozen=True)
class StoreSettings:
    path: str = "imabot.sqlite3"


@dataclass(frozen=True)
class JobsSettings:
    global_concurrency: int = 20
    per_user_concurrency: int = 2
    max_pending_per_user: int = 5
    daily_credit_budget: int = 0
    poll_interval: float = 8.0
    max_wait: float = 2400.0
    progress_interval_pro: float = 45.0
    progress_interval_fast: float = 30.0
    history_min_samples: int = 5
    max_images: int = 9
    max_image_mb: float = 20.0
    dedup_hours: float = 8.0


@dataclass(frozen=True)
class DefaultsSettings:
    model: str = "ima-pro-fast"
    duration: int | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    locale: str = "en"


@dataclass(frozen=True)
class DiscordSection:
    enabled: bool = False
    token: str = ""
    guild_allowlist: list[str] = field(default_factory=list)
    channel_allowlist: list[str] = field(default_factory=list)
    command_guild_ids: list[str] = field(default_factory=list)
    upload_video: bool = False
    min_edit_interval: float = 10.0


@dataclass(frozen=True)
class FeishuSection:
    enabled: bool = False
    app_id: str = ""
    app_secret: str = ""
    domain: str = "https://open.feishu.cn"
    transport: str = "ws"
    encrypt_key: str = ""
    verification_token: str = ""
    chat_allowlist: list[str] = field(default_factory=list)
    send_video_file: bool = False
    min_patch_interval: float = 10.0


@dataclass(frozen=True)
class WebSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"
    json: bool = False
    file: str = ""  # a path enables a daily-rotated file kept 7 days


@dataclass(frozen=True)
class Config:
    ima: ImaSettings = field(default_factory=ImaSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    jobs: JobsSettings = field(default_factory=JobsSettings)
    defaults: DefaultsSettings = field(default_factory=DefaultsSettings)
    discord: DiscordSection = field(default_factory=DiscordSection)
    feishu: FeishuSection = field(default_factory=FeishuSection)
    web: WebSettings = field(default_factory=WebSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)

    def secrets(self) -> list[str]:
        """Every secret value in the config, for log redaction."""
        values = [
            self.ima.api_key,
            self.discord.token,
            self.feishu.app_secret,
            self.feishu.encrypt_key,
            self.feishu.verification_token,
        ]
        return [v for v in values if v and len(v) >= 6]


def load_config(path: str | Path) -> Config:
    """Reads and validates a config file. Raises ConfigError naming the dotted key."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the file ({exc.strerror})") from None
    try:
        data = yaml.load(text, Loader=_EnvLoader) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"not valid YAML: {exc}") from None
    config = _build(Config, data, "")
    _validate(config)
    return config


def parse_config(data: Mapping[str, Any]) -> Config:
    config = _build(Config, data, "")
    _validate(config)
    return config


def _build(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(prefix or "(root)", "must be a mapping")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(_join(prefix, key), f"unknown option (known: {', '.join(sorted(known))})")
    values = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        key, value, hint = _join(prefix, f.name), data[f.name], hints[f.name]
        if isinstance(value, _Missing):
            raise ConfigError(key, f"environment variable {value.var} is not set")  # type: ignore[attr-defined]
        values[f.name] = _build(hint, value, key) if is_dataclass(hint) else _coerce(hint, value, key)
    return cls(**values)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    args = get_args(hint)
    if type(None) in args:
        if value is None or value == "":
            return None
        hint = next(a for a in args if a is not type(None))
    if get_origin(hint) is list:
        items = value if isinstance(value, list) else [value] if value not in (None, "") else []
        return [str(v) for v in items]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(key, f"must be true or false, not {value!r}")
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"must be a number, not {value!r}")
        if hint is int and not float(value).is_integer():
            raise ConfigError(key, f"must be a whole number, not {value!r}")
        return hint(value)
    if hint is str:
        if isinstance(value, Mapping | list):
            raise ConfigError(key, "must be a single value")
        return "" if value is None else str(value)
    return value


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _validate(c: Config) -> None:
    if c.defaults.model not in ("ima-pro", "ima-pro-fast"):
        raise ConfigError("defaults.model", "must be ima-pro or ima-pro-fast (the only models this bot runs)")
    if c.defaults.locale not in ("en", "zh"):
        raise ConfigError("defaults.locale", "must be en or zh")
    if c.feishu.transport not in ("ws", "webhook"):
        raise ConfigError("feishu.transport", "must be ws or webhook")
    for key, value in (
        ("jobs.global_concurrency", c.jobs.global_concurrency),
        ("jobs.per_user_concurrency", c.jobs.per_user_concurrency),
        ("jobs.poll_interval", c.jobs.poll_interval),
        ("jobs.max_wait", c.jobs.max_wait),
    ):
        if value <= 0:
            raise ConfigError(key, "must be greater than 0")
    if c.jobs.max_wait > 2400:
        raise ConfigError("jobs.max_wait", "must be at most 2400 seconds (IMA's 40-minute cap)")
    if c.discord.enabled and not c.discord.token:
        raise ConfigError("discord.token", "is required when discord.enabled is true")
    if c.feishu.enabled and not (c.feishu.app_id and c.feishu.app_secret):
        raise ConfigError("feishu.app_id", "app_id and app_secret are required when feishu.enabled is true")
    if c.feishu.enabled and c.feishu.transport == "webhook" and not c.web.enabled:
        raise ConfigError("web.enabled", "the Feishu webhook transport needs the web server")
