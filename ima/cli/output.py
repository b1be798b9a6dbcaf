"""The `ima` command's output: localised texts, stderr progress, stdout results, exit codes, the JSON error line."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, TextIO

from ..errors import (
    ImaApiError,
    ImaError,
    ImaTransportError,
    ImaUsageError,
    TaskFailed,
    TaskTimeout,
    UploadError,
)
from ..logs import mask_known

LANGUAGES = ("en", "zh")

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_API = 3
EXIT_TASK_FAILED = 4
EXIT_TIMEOUT = 5
EXIT_UNREACHABLE = 6
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = f"""\
exit codes:
  {EXIT_OK}    success
  {EXIT_INTERNAL}    unexpected internal error (details in the log file)
  {EXIT_USAGE}    usage: bad or missing arguments, missing API key, model not allowed or not found
  {EXIT_API}    IMA rejected the request: invalid key (401), not enough credits (4008), subscription
       needed (4014), parameters without a price rule (6006/6009/6010), server error (500), upload refused
  {EXIT_TASK_FAILED}    the task was created but generation failed or the task was deleted
  {EXIT_TIMEOUT}    no result within --max-wait (the task may still finish: see your creation records)
  {EXIT_UNREACHABLE}    IMA could not be reached, or the create answer was lost (check your creation records
       before retrying, so you are not charged twice)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)
With --json (or --output-json) the last stdout line is one JSON object: the result, or
{{"error": {{"code", "message", "hint"}}}} where "code" is always a string ("6009", "timeout", "usage").
"""

INTERNAL_CODE = "internal"


def exit_code_for(exc: BaseException) -> int:
    """The process exit status for a failure (see EXIT_CODES_HELP)."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, ImaUsageError):
        return EXIT_USAGE
    if isinstance(exc, ImaApiError | UploadError):
        return EXIT_API
    if isinstance(exc, TaskFailed):
        return EXIT_TASK_FAILED
    if isinstance(exc, TaskTimeout):
        return EXIT_TIMEOUT
    if isinstance(exc, ImaTransportError):
        return EXIT_UNREACHABLE
    if isinstance(exc, ImaError):
        return EXIT_API
    return EXIT_INTERNAL


@cache
def load_texts() -> Mapping[str, Mapping[str, str]]:
    """The CLI's own message templates by language, from cli_texts.json (read once)."""
    # Next to this module, not importlib.resources: that also works when `ima` is imported as a namespace.
    return json.loads(Path(__file__).with_name("cli_texts.json").read_text(encoding="utf-8"))


class Console:
    """Writes the command's messages: progress and errors to stderr, results to stdout."""

    def __init__(
        self,
        language: str = "en",
        *,
        json_mode: bool = False,
        out: TextIO | None = None,
        err: TextIO | None = None,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.language = language if language in LANGUAGES else "en"
        self.json_mode = json_mode
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.secrets = secrets

    def text(self, key: str, **params: Any) -> str:
        """The localised text for `key` (English when the language lacks it), formatted with params."""
        tables = load_texts()
        template = tables[self.language].get(key) or tables["en"][key]
        return template.format(**params)

    def info(self, key: str, **params: Any) -> None:
        """One progress line on stderr."""
        self._write(self.err, self.text(key, **params))

    def line(self, text: str) -> None:
        """One human result line on stdout."""
        self._write(self.out, text)

    def emit_json(self, payload: Mapping[str, Any]) -> None:
        """One compact JSON object as a single stdout line."""
        self._write(self.out, json.dumps(payload, ensure_ascii=False))

    def fail(self, exc: BaseException, *, log_dir: str = "") -> int:
        """Reports a failure (stderr text, plus the JSON error line in JSON mode); returns the exit code."""
        if isinstance(exc, ImaError):
            body = exc.to_json()
        else:
            body = {
                "code": INTERNAL_CODE,
                "message": self.text("unexpected", message=f"{type(exc).__name__}: {exc}"),
                "hint": self.text("unexpected_hint", log_dir=log_dir),
            }
        body = {k: mask_known(v, self.secrets) if isinstance(v, str) else v for k, v in body.items()}
        self._write(self.err, self.text("error", message=body["message"]))
        if body.get("hint"):
            self._write(self.err, self.text("hint", hint=body["hint"]))
        if self.json_mode:
            self.emit_json({"error": body})
        return exit_code_for(exc)

    def _write(self, stream: TextIO, text: str) -> None:
        stream.write(mask_known(text, self.secrets) + "\n")
        stream.flush()
