"""The `ima` command: a drop-in for the vendor skill's script (create, products, status) plus the emulator."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence

import aiohttp

from ..client import DEFAULT_BASE_URL, DEFAULT_UPLOAD_BASE_URL, ImaClient
from ..errors import ImaError, ImaUsageError
from ..logs import close_logging, mask_secret, quiet_logging, setup_logging
from .args import DEFAULT_LOG_DIR, Connection, parse_args, resolve_connection, resolve_path
from .create import run_create
from .output import EXIT_OK, Console, exit_code_for
from .query import run_products, run_status

_Command = Callable[[argparse.Namespace, Console, ImaClient, logging.Logger], Awaitable[int]]


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None) -> int:
    """Runs `ima` with these arguments (default: sys.argv[1:]); returns the exit status (see --help).

    Failures become a message on stderr (plus the JSON error line with --output-json), never a traceback;
    only `--help` leaves through SystemExit(0), as argparse does."""
    argv = sys.argv[1:] if argv is None else list(argv)
    env = os.environ if env is None else env
    try:
        args = parse_args(argv)
    except ImaError as exc:
        return Console(json_mode="--output-json" in argv or "--json" in argv).fail(exc)
    if args.command == "emulator":
        return _run_emulator(args, Console(getattr(args, "language", "en"), json_mode=args.output_json))
    console = Console(args.language, json_mode=args.output_json)
    log_dir = resolve_path(args.log_dir, env, "IMA_LOG_DIR", DEFAULT_LOG_DIR)
    log = _open_log(log_dir, console, secrets=[k for k in (args.api_key, env.get("IMA_API_KEY")) if k])
    try:
        conn = resolve_connection(
            args, env, default_base=DEFAULT_BASE_URL, default_upload=DEFAULT_UPLOAD_BASE_URL
        )
        console.secrets = (conn.api_key,)
        log.info(
            "start command=%s base_url=%s upload_base_url=%s api_key=%s",
            args.command,
            conn.base_url,
            conn.upload_base_url,
            mask_secret(conn.api_key),
        )
        commands: dict[str, _Command] = {
            "create": lambda a, c, cl, lg: run_create(a, c, cl, lg, env=env),
            "products": run_products,
            "status": run_status,
        }
        code = asyncio.run(_with_client(commands[args.command], args, console, conn, log))
        log.info("done command=%s exit=%s", args.command, code)
        return code
    except ImaError as exc:
        log.error("failed: %s: %s (code=%s)", type(exc).__name__, exc.message, exc.code)
        return console.fail(exc)
    except KeyboardInterrupt as exc:
        log.warning("interrupted")
        console.info("interrupted")
        return exit_code_for(exc)
    except BrokenPipeError:
        # The reader went away (`ima products | head`): stop quietly, as shell tools do.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # keeps the interpreter's final flush quiet
        return 0
    except Exception as exc:
        log.exception("unexpected error")
        return console.fail(exc, log_dir=log_dir)
    finally:
        close_logging(log)


async def _with_client(
    command: _Command, args: argparse.Namespace, console: Console, conn: Connection, log: logging.Logger
) -> int:
    async with aiohttp.ClientSession() as session:
        client = ImaClient(
            session,
            conn.api_key,
            base_url=conn.base_url,
            upload_base_url=conn.upload_base_url,
            language=conn.language,
        )
        return await command(args, console, client, log)


def _open_log(log_dir: str, console: Console, *, secrets: list[str]) -> logging.Logger:
    # No log file (read-only home, bad path) is worth a note, never a failed run.
    try:
        return setup_logging(log_dir, secrets=secrets)
    except OSError as exc:
        console.info("log_unavailable", reason=exc.strerror or exc)
        return quiet_logging()


def _run_emulator(args: argparse.Namespace, console: Console) -> int:
    from ..emulator import serve  # the emulator is optional at import time for every other command

    async def run() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            with contextlib.suppress(NotImplementedError):  # Windows has no add_signal_handler
                loop.add_signal_handler(signal.SIGTERM, task.cancel)
        await serve(args.host, args.port, speed=args.speed, config_path=args.config)

    try:
        asyncio.run(run())
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    except ImaError as exc:
        return console.fail(exc)
    except OSError as exc:  # the port is taken, or the host is not ours
        where = f"{args.host}:{args.port}"
        return console.fail(
            ImaUsageError(f"cannot listen on {where}: {exc.strerror or exc}", code="emulator_bind")
        )
    console.info("emulator_stopped")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
