"""Typed, env-expanded configuration, checked by type and range at load: whatever would fail at start
fails here, with an error naming the dotted key."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

from bot.config_yaml import ConfigLoader, Missing
from bot.jobs._sql import is_postgres_url, mask_url, url_password


class ConfigError(ValueError):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class ImaSettings:
    api_key: str = ""
    base_url: str = "https://api.imastudio.com"
    upload_base_url: str = "https://imapi.liveme.com"
    language: str = "en"
    catalog_ttl: float = 600.0


@dataclass(frozen=True)
class StoreSettings:
    path: str = ".imabot/imabot.sqlite3"  # relative paths are read from the config's folder
    url: str = ""  # issue 13: postgresql://… puts the store in PostgreSQL (replicas); "" = SQLite at path


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
    max_storyboard_shots: int = 6  # issue 14: shots per storyboard
    confirm_above_credits: int = 0  # issue 14: ask before a job or storyboard costing more; 0 = never
    lease_seconds: float = 30.0  # issue 13: how long a replica's hold on a job lasts unless renewed
    replica_id: str = ""  # issue 13: this replica's name in the store; "" = host:pid:random at start
    min_prompt_chars: int = 4  # issue 9: a prompt with fewer content characters is confirmed first


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
    shard_count: int = 0  # issue 13: gateway shards in all; 0 = one connection (no sharding)
    shard_ids: list[int] = field(default_factory=list)  # issue 13: the shards this replica runs; [] = all


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
    webhook_max_age: float = 300.0  # seconds a signed push's timestamp may be from now (replays)


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
            url_password(self.store.url),  # issue 13: the store URL's password
        ]
        return [v for v in values if v and len(v) >= 6]


def load_config(path: str | Path) -> Config:
    """Reads and checks a config file; relative paths in it are read from the file's folder.
    Raises ConfigError naming the dotted key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the file ({exc.strerror})") from None
    try:
        data = yaml.load(text, Loader=ConfigLoader) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"not valid YAML: {exc}") from None
    return parse_config(data, base=path.resolve().parent)


def parse_config(data: Mapping[str, Any], *, base: Path | None = None) -> Config:
    """Builds and checks a Config from plain data; relative paths are read from base (default: the
    current folder). Raises ConfigError naming the dotted key."""
    return _validate(_build(Config, data, ""), base or Path.cwd())


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
        if isinstance(value, Missing):
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


# Numeric options: (lowest, highest, whether the lowest itself is refused). None = no upper bound.
_RANGES: dict[str, tuple[float, float | None, bool]] = {
    "ima.catalog_ttl": (0, None, False),
    "jobs.global_concurrency": (1, None, False),
    "jobs.per_user_concurrency": (1, None, False),
    "jobs.max_pending_per_user": (1, None, False),
    "jobs.daily_credit_budget": (0, None, False),
    "jobs.poll_interval": (0, 600, True),
    "jobs.max_wait": (0, 2400, True),  # IMA's 40-minute cap
    "jobs.progress_interval_pro": (0, None, True),
    "jobs.progress_interval_fast": (0, None, True),
    "jobs.history_min_samples": (1, None, False),
    "jobs.max_images": (1, 9, False),
    "jobs.max_image_mb": (0, None, True),
    "jobs.dedup_hours": (0, None, True),
    "jobs.max_storyboard_shots": (2, 20, False),
    "jobs.confirm_above_credits": (0, None, False),
    "jobs.min_prompt_chars": (0, 200, False),  # issue 9; a CJK character counts as two
    "jobs.lease_seconds": (0, 3600, True),  # issue 13
    "defaults.duration": (1, 60, False),
    "discord.shard_count": (0, None, False),  # issue 13
    "discord.min_edit_interval": (0, None, False),
    "feishu.min_patch_interval": (0, None, False),
    "feishu.webhook_max_age": (1, None, False),
    "web.port": (0, 65535, False),  # 0 = any free port (tests)
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "ima.language": ("en", "zh"),
    "defaults.locale": ("en", "zh"),
    "defaults.resolution": ("480P", "720P", "1080P", "4K"),
    "feishu.transport": ("ws", "webhook"),
    "logging.level": ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
}
_URLS = ("ima.base_url", "ima.upload_base_url", "feishu.domain")
_PATHS = ("store.path", "logging.file")
_RATIO = re.compile(r"^(\d{1,2})\s*[:：]\s*(\d{1,2})$")


def _get(c: Config, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(c, section), name)


def _set(c: Config, key: str, value: Any) -> Config:
    section, name = key.split(".")
    return replace(c, **{section: replace(getattr(c, section), **{name: value})})


def _validate(c: Config, base: Path) -> Config:
    """Checks every value by type and range; returns the config with values in canonical form (upper-case
    levels and resolutions, `16:9` ratios, model ids, absolute paths)."""
    for key, (low, high, open_low) in _RANGES.items():
        value = _get(c, key)
        if value is None:
            continue
        if (open_low and value <= low) or value < low:
            raise ConfigError(
                key, f"must be {'greater than' if open_low else 'at least'} {low:g}, not {value:g}"
            )
        if high is not None and value > high:
            raise ConfigError(key, f"must be at most {high:g}, not {value:g}")
    for key, allowed in _CHOICES.items():
        value = _get(c, key)
        if value is None:
            continue
        canon = value.upper() if allowed[0].isupper() else value.lower()
        if canon not in allowed:
            raise ConfigError(key, f"must be one of {', '.join(allowed)}, not {value!r}")
        c = _set(c, key, canon)
    for key in _URLS:
        if not re.match(r"^https?://[^\s/]+", _get(c, key)):
            raise ConfigError(key, f"must be an http(s):// URL, not {_get(c, key)!r}")
    c = _set(c, "defaults.model", _model(c.defaults.model))
    c = _set(c, "defaults.aspect_ratio", _ratio(c.defaults.aspect_ratio))
    if c.store.url and not is_postgres_url(c.store.url):  # issue 13; the message never shows a password
        raise ConfigError("store.url", f"must be a postgresql:// URL, not {mask_url(c.store.url)!r}")
    for key in _PATHS:
        if _get(c, key) and not (key == "store.path" and c.store.url):  # unused with store.url
            c = _set(c, key, _writable(key, base / Path(_get(c, key)).expanduser()))
    c = _set(c, "discord.shard_ids", _shards(c.discord.shard_ids, c.discord.shard_count))
    if c.discord.enabled and not c.discord.token:
        raise ConfigError("discord.token", "is required when discord.enabled is true")
    if c.feishu.enabled and not (c.feishu.app_id and c.feishu.app_secret):
        raise ConfigError("feishu.app_id", "app_id and app_secret are required when feishu.enabled is true")
    if c.feishu.enabled and c.feishu.transport == "webhook" and not c.web.enabled:
        raise ConfigError("web.enabled", "the Feishu webhook transport needs the web server")
    return c


def _model(value: str) -> str:
    from ima import normalize_model_id
    from ima.errors import ImaUsageError

    try:
        return normalize_model_id(value).value
    except ImaUsageError:
        raise ConfigError(
            "defaults.model",
            f"must be ima-pro (Ima Sevio 1.0) or ima-pro-fast (Ima Sevio 1.0-Fast), not {value!r}",
        ) from None


def _shards(ids: list[Any], count: int) -> list[int]:
    """discord.shard_ids as whole numbers, each below discord.shard_count (issue 13: replicas split the
    gateway shards; a shard run twice would see every event twice)."""
    out: list[int] = []
    for raw in ids:
        text = str(raw).strip()
        if not text.isdigit():
            raise ConfigError("discord.shard_ids", f"must be whole numbers, not {raw!r}")
        if int(text) >= count:
            raise ConfigError(
                "discord.shard_ids", f"shard {text} needs discord.shard_count above {text}, not {count}"
            )
        out.append(int(text))
    if len(set(out)) != len(out):
        raise ConfigError("discord.shard_ids", "lists a shard twice")
    return out


def _ratio(value: str | None) -> str | None:
    if value is None:
        return None
    m = _RATIO.match(value.strip())
    if not m or not int(m.group(1)) or not int(m.group(2)):
        raise ConfigError(
            "defaults.aspect_ratio",
            f'must be a ratio such as "16:9" or "9:16" (in quotes), not {value!r}',
        )
    return f"{int(m.group(1))}:{int(m.group(2))}"


def _writable(key: str, path: Path) -> str:
    """The absolute path, once it is known the bot can create or write the file there."""
    path = Path(os.path.abspath(path))
    if path.is_dir():
        raise ConfigError(key, f"{path} is a folder; give a file path in it")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise ConfigError(key, f"{path} is not writable")
        return str(path)
    folder = next(p for p in path.parents if p.exists())
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(key, f"cannot create {path}: {folder} is not a writable folder")
    return str(path)
