"""The `ima` command's arguments: the parser (vendor flags plus ours) and the pure settings derived from them."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from ..errors import ImaUsageError
from ..models import API_KEY_URL, DEFAULT_MODEL, MAX_WAIT_S, POLL_INTERVAL_S, ModelId, TaskType
from ..prefs import DEFAULT_PREFS_PATH, get_preferred_model
from .output import EXIT_CODES_HELP, LANGUAGES

DEFAULT_LOG_DIR = "~/.openclaw/logs/ima_skills/"
TASK_TYPES = [t.value for t in TaskType]
COMMANDS = ("create", "products", "status", "emulator")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises ImaUsageError instead of exiting, so --output-json can report it."""

    def error(self, message: str) -> NoReturn:
        raise ImaUsageError(
            f"{self.prog}: {message}", code="usage", hint=f"Run `{self.prog} --help` for the options."
        )


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _json_flags(parser: argparse.ArgumentParser) -> None:
    """`--json` and its vendor spelling `--output-json`: the same switch on every subcommand."""
    parser.add_argument(
        "--json",
        "--output-json",
        dest="output_json",
        action="store_true",
        help="machine-readable stdout (the last line is one JSON object)",
    )


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api-key", help="IMA Open API key (starts with ima_); default: env IMA_API_KEY")
    common.add_argument("--base-url", help="API base URL; default: env IMA_BASE_URL, else production")
    common.add_argument(
        "--upload-base-url",
        help="upload-token service URL; default: env IMA_UPLOAD_BASE_URL or IMA_IM_BASE_URL, else production",
    )
    common.add_argument("--language", default="en", choices=LANGUAGES, help="product labels and messages")
    common.add_argument("--log-dir", help=f"log directory; default: env IMA_LOG_DIR, else {DEFAULT_LOG_DIR}")
    _json_flags(common)
    return common


def build_parser() -> argparse.ArgumentParser:
    """The full `ima` parser; its `error()` raises ImaUsageError (code "usage") instead of exiting."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="ima",
        description="Generate videos with Ima Sevio 1.0 / 1.0-Fast through the IMA Open API.",
        epilog=EXIT_CODES_HELP
        + "\nVendor style (no subcommand) means `create`: ima --task-type ... --prompt ...",
        formatter_class=fmt,
    )
    sub = parser.add_subparsers(dest="command", metavar="{create,products,status,emulator}")
    common = _common()

    create = sub.add_parser(
        "create",
        parents=[common],
        help="create a video and wait for it",
        epilog=EXIT_CODES_HELP,
        formatter_class=fmt,
    )
    create.add_argument("--task-type", required=True, choices=TASK_TYPES)
    create.add_argument(
        "--model-id",
        help="ima-pro, ima-pro-fast or a Sevio name; default: your last model, else ima-pro-fast",
    )
    create.add_argument("--version-id", help="pin a product version id instead of the newest")
    create.add_argument("--prompt", help="what the video shows (required unless --list-models)")
    create.add_argument(
        "--input-images",
        nargs="*",
        action="extend",
        default=[],
        metavar="URL_OR_PATH",
        help="image URLs or local files (uploaded); repeatable",
    )
    create.add_argument("--extra-params", help="JSON object of parameters, e.g. '{\"duration\": 10}'")
    create.add_argument("--size", help=argparse.SUPPRESS)  # vendor flag; becomes extra param `size`
    create.add_argument("--user-id", default="default", help="preference slot (never sent to IMA)")
    create.add_argument("--poll-interval", type=_positive, default=POLL_INTERVAL_S, help="seconds (8)")
    create.add_argument(
        "--max-wait", type=_positive, default=MAX_WAIT_S, help=f"seconds, at most {MAX_WAIT_S:.0f}"
    )
    create.add_argument("--prefs-file", help=f"default: env IMA_PREFS_FILE, else {DEFAULT_PREFS_PATH}")
    create.add_argument("--list-models", action="store_true", help="list the models for --task-type and exit")

    products = sub.add_parser(
        "products",
        parents=[common],
        help="list models, options and credit rules",
        epilog=EXIT_CODES_HELP,
        formatter_class=fmt,
    )
    products.add_argument("--category", choices=TASK_TYPES, help="task type (default: all four)")

    status = sub.add_parser(
        "status",
        parents=[common],
        help="show one task's state",
        description="One task-detail call. Exits 0 whenever the task could be read, whatever its state.",
        epilog=EXIT_CODES_HELP,
        formatter_class=fmt,
    )
    status.add_argument("task_id")

    emulator = sub.add_parser("emulator", help="run the local IMA API emulator until Ctrl-C")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8787)
    emulator.add_argument("--speed", type=_positive, default=20.0, help="time scale (20 = 20x faster)")
    emulator.add_argument("--config", help="emulator config file")
    _json_flags(emulator)
    return parser


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """`argv` with `create` inserted for the vendor's subcommand-less form (`ima --task-type …`)."""
    args = list(argv)
    if args and args[0].startswith("-") and args[0] not in ("-h", "--help"):
        return ["create", *args]
    return args


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parsed arguments. Raises ImaUsageError for bad ones; `--help` still exits via SystemExit(0)."""
    parser = build_parser()
    args = parser.parse_args(normalize_argv(argv))
    if args.command is None:
        raise ImaUsageError("ima: a command is required", code="usage", hint=parser.format_usage().strip())
    return args


@dataclass(frozen=True)
class Connection:
    api_key: str
    base_url: str
    upload_base_url: str
    language: str


def resolve_connection(
    args: argparse.Namespace, env: Mapping[str, str], *, default_base: str, default_upload: str
) -> Connection:
    """Key and hosts from flags, then env, then defaults. Raises ImaUsageError (code missing_api_key)."""
    key = (args.api_key or env.get("IMA_API_KEY") or "").strip()
    if not key:
        raise ImaUsageError(
            "No API key: pass --api-key or set IMA_API_KEY.",
            code="missing_api_key",
            hint=f"Get a key at {API_KEY_URL}",
            links=(API_KEY_URL,),
        )
    upload = args.upload_base_url or env.get("IMA_UPLOAD_BASE_URL") or env.get("IMA_IM_BASE_URL")
    return Connection(
        api_key=key,
        base_url=(args.base_url or env.get("IMA_BASE_URL") or default_base).rstrip("/"),
        upload_base_url=(upload or default_upload).rstrip("/"),
        language=args.language,
    )


def resolve_path(flag: str | None, env: Mapping[str, str], env_name: str, default: str) -> str:
    """A path option: the flag, else the environment variable, else the default (not yet expanded)."""
    return flag or env.get(env_name) or default


def parse_overrides(extra_params: str | None, size: str | None = None) -> dict[str, Any]:
    """The user's parameter overrides. Raises ImaUsageError unless --extra-params is a JSON object."""
    overrides: dict[str, Any] = {}
    if size:
        overrides["size"] = size
    if extra_params:
        try:
            value = json.loads(extra_params)
        except ValueError as exc:
            raise ImaUsageError(f"--extra-params is not valid JSON: {exc}", code="usage") from None
        if not isinstance(value, dict):
            raise ImaUsageError("--extra-params must be a JSON object", code="usage")
        overrides.update(value)
    return overrides


def clamp_max_wait(seconds: float) -> float:
    """The wait cap, never above the vendor's 2400 s."""
    return min(seconds, MAX_WAIT_S)


def choose_model(
    requested: str | None,
    prefs: Mapping[str, Any],
    user_id: str,
    task_type: str,
    normalize: Callable[[str], ModelId],
) -> tuple[ModelId, str]:
    """(model, source): --model-id ("arg"), else the saved preference ("pref"), else Fast ("default").

    Raises ImaUsageError when --model-id names a model that is not allowed.
    """
    if requested:
        return normalize(requested), "arg"
    preferred = get_preferred_model(prefs, user_id, task_type, normalize)
    if preferred is not None:
        return preferred, "pref"
    return DEFAULT_MODEL, "default"
