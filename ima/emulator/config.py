"""The emulator's typed configuration, read from a mapping or a YAML/JSON file."""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..errors import ImaUsageError
from .faults import Fault, FaultError

# A public, fake key so `ima emulator` works with no config at all; never a real secret.
DEFAULT_API_KEY = "ima_emulator_local_key"
DEFAULT_BALANCE = 1_000_000


class EmulatorConfigError(ImaUsageError):
    key = "emulator_config"


class CoverField(StrEnum):
    COVER = "cover"
    COVER_URL = "cover_url"
    BOTH = "both"


class DurationType(StrEnum):
    STRING = "string"
    NUMBER = "number"


class ResolutionCase(StrEnum):
    LOWER = "lower"
    UPPER = "upper"


class PendingStatus(StrEnum):
    NULL = "null"
    EMPTY = "empty"


@dataclass(frozen=True)
class Variants:
    """Spellings the contract leaves open; each is served exactly as chosen here."""

    success_code: int = 0
    cover_field: CoverField = CoverField.BOTH
    duration_type: DurationType = DurationType.STRING
    resolution_case: ResolutionCase = ResolutionCase.LOWER
    root_level: bool = False
    pending_resource_status: PendingStatus = PendingStatus.NULL


@dataclass(frozen=True)
class Codes:
    """Business codes for the cases the contract does not settle."""

    bad_request: int = 400
    model_not_found: int = 400
    media_mismatch: int = 400
    unknown_task: int = 404


@dataclass(frozen=True)
class UploadSettings:
    check_timestamp: bool = False
    max_skew_seconds: int = 300
    enforce_content_type: bool = True
    url_ttl_seconds: int = 7 * 24 * 3600


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything the emulator can be told; `from_mapping` names the dotted key of any mistake."""

    api_keys: Mapping[str, int] = field(
        default_factory=lambda: {DEFAULT_API_KEY: DEFAULT_BALANCE}, repr=False
    )
    speed: float = 1.0
    base_seconds: Mapping[str, float] = field(
        default_factory=lambda: {"ima-pro": 200.0, "ima-pro-fast": 90.0}
    )
    default_seconds: float = 120.0
    pending_fraction: float = 0.1
    task_timeout_seconds: float = 2400.0
    mirror_status: bool = False
    verify_status: str = "Active"
    products_path: str | None = None
    upload_port: int | None = None
    variants: Variants = field(default_factory=Variants)
    codes: Codes = field(default_factory=Codes)
    upload: UploadSettings = field(default_factory=UploadSettings)
    faults: tuple[Fault, ...] = ()

    def with_speed(self, speed: float) -> EmulatorConfig:
        """A copy with another time scale; raises EmulatorConfigError if it is not positive."""
        if speed <= 0:
            raise EmulatorConfigError("speed must be positive")
        return replace(self, speed=float(speed))

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> EmulatorConfig:
        """The config a mapping describes; raises EmulatorConfigError naming the bad dotted key."""
        if not isinstance(raw, Mapping):
            raise EmulatorConfigError("emulator config must be a mapping")
        _reject_unknown(raw, cls, "")
        kw: dict[str, Any] = {}
        if "api_keys" in raw:
            kw["api_keys"] = _api_keys(raw["api_keys"])
        for name in ("speed", "default_seconds", "pending_fraction", "task_timeout_seconds"):
            if name in raw:
                kw[name] = _number(raw[name], name, positive=name != "pending_fraction")
        if "base_seconds" in raw:
            src = _mapping(raw["base_seconds"], "base_seconds")
            kw["base_seconds"] = {
                str(k): _number(v, f"base_seconds.{k}", positive=True) for k, v in src.items()
            }
        for name in ("mirror_status",):
            if name in raw:
                kw[name] = _bool(raw[name], name)
        for name in ("verify_status", "products_path"):
            if name in raw and raw[name] is not None:
                kw[name] = str(raw[name])
        if raw.get("upload_port") is not None:
            kw["upload_port"] = int(_number(raw["upload_port"], "upload_port"))
        for name, sub in (("variants", Variants), ("codes", Codes), ("upload", UploadSettings)):
            if name in raw:
                kw[name] = _section(sub, raw[name], name)
        if "faults" in raw:
            kw["faults"] = _faults(raw["faults"])
        return cls(**kw)

    @classmethod
    def from_file(cls, path: str | Path) -> EmulatorConfig:
        """The config in a YAML or JSON file; raises EmulatorConfigError if unreadable or invalid."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise EmulatorConfigError(f"cannot read emulator config {path}: {exc.strerror}") from None
        raw = _parse_text(text, yaml_file=path.suffix.lower() in (".yaml", ".yml"))
        return cls.from_mapping(raw or {})


def _parse_text(text: str, *, yaml_file: bool) -> Any:
    if yaml_file:
        # `ima` may not import third-party packages statically; pyyaml ships with the distribution,
        # and plain JSON (a subset of YAML) still loads without it.
        try:
            yaml = importlib.import_module("yaml")
        except ImportError:
            yaml = None
        if yaml is not None:
            try:
                return yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise EmulatorConfigError(f"emulator config is not valid YAML: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EmulatorConfigError(f"emulator config is not valid JSON: {exc}") from None


def _reject_unknown(raw: Mapping[str, Any], cls: type, prefix: str) -> None:
    known = {f.name for f in fields(cls)}
    for key in raw:
        if key not in known:
            raise EmulatorConfigError(f"unknown emulator config key: {prefix}{key}")


def _section(cls: type, raw: Any, name: str) -> Any:
    src = _mapping(raw, name)
    _reject_unknown(src, cls, f"{name}.")
    kw: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in src:
            continue
        value, dotted = src[f.name], f"{name}.{f.name}"
        default = f.default
        if isinstance(default, StrEnum):
            kw[f.name] = _enum(type(default), value, dotted)
        elif isinstance(default, bool):
            kw[f.name] = _bool(value, dotted)
        else:
            kw[f.name] = int(_number(value, dotted))
    if name == "variants" and kw.get("success_code", 0) not in (0, 200):
        raise EmulatorConfigError("variants.success_code must be 0 or 200")
    return cls(**kw)


def _enum(cls: type[StrEnum], value: Any, dotted: str) -> StrEnum:
    text = "null" if value is None else ("empty" if value == "" else str(value).strip().lower())
    try:
        return cls(text)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise EmulatorConfigError(f"{dotted} must be one of: {allowed}") from None


def _mapping(raw: Any, dotted: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise EmulatorConfigError(f"{dotted} must be a mapping")
    return raw


def _number(raw: Any, dotted: str, *, positive: bool = False) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise EmulatorConfigError(f"{dotted} must be a number")
    if positive and raw <= 0:
        raise EmulatorConfigError(f"{dotted} must be positive")
    if raw < 0:
        raise EmulatorConfigError(f"{dotted} must not be negative")
    return float(raw)


def _bool(raw: Any, dotted: str) -> bool:
    if not isinstance(raw, bool):
        raise EmulatorConfigError(f"{dotted} must be true or false")
    return raw


def _api_keys(raw: Any) -> dict[str, int]:
    if isinstance(raw, list | tuple):
        raw = {k: DEFAULT_BALANCE for k in raw}
    src = _mapping(raw, "api_keys")
    out: dict[str, int] = {}
    for i, (key, balance) in enumerate(src.items()):
        if not isinstance(key, str) or not key.strip():
            raise EmulatorConfigError(f"api_keys[{i}] must be a non-empty string")
        out[key.strip()] = int(_number(DEFAULT_BALANCE if balance is None else balance, f"api_keys[{i}]"))
    if not out:
        raise EmulatorConfigError("api_keys must name at least one key")
    return out


def _faults(raw: Any) -> tuple[Fault, ...]:
    if not isinstance(raw, list | tuple):
        raise EmulatorConfigError("faults must be a list")
    out = []
    for i, item in enumerate(raw):
        try:
            out.append(Fault.from_mapping(item))
        except FaultError as exc:
            raise EmulatorConfigError(f"faults[{i}]: {exc.message}") from None
    return tuple(out)
