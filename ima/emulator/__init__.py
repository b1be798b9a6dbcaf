"""A faithful local emulator of the IMA Open API (aiohttp): rules, time scale, faults, request log."""

from __future__ import annotations

from .config import (
    DEFAULT_API_KEY,
    Codes,
    CoverField,
    DurationType,
    EmulatorConfig,
    EmulatorConfigError,
    PendingStatus,
    ResolutionCase,
    UploadSettings,
    Variants,
)
from .faults import ArmedFault, Fault, FaultError, FaultKind, FaultSet
from .replies import STATE, STATUS_FOR_CODE, http_status_for
from .rules import compute_rule, normalise_value
from .server import Emulator, create_app, serve
from .state import EmulatorState, RequestLog, RequestRecord, mask
from .tasks import EmuTask, Outcome, Phase
from .upload import APP_ID, APP_KEY, expected_sign

__all__ = [
    "APP_ID",
    "APP_KEY",
    "DEFAULT_API_KEY",
    "STATE",
    "STATUS_FOR_CODE",
    "ArmedFault",
    "Codes",
    "CoverField",
    "DurationType",
    "EmuTask",
    "Emulator",
    "EmulatorConfig",
    "EmulatorConfigError",
    "EmulatorState",
    "Fault",
    "FaultError",
    "FaultKind",
    "FaultSet",
    "Outcome",
    "PendingStatus",
    "Phase",
    "RequestLog",
    "RequestRecord",
    "ResolutionCase",
    "UploadSettings",
    "Variants",
    "compute_rule",
    "create_app",
    "expected_sign",
    "http_status_for",
    "mask",
    "normalise_value",
    "serve",
]
