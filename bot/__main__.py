"""`imabot run | console | parse | check-config`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

from bot.config import Config, ConfigError, load_config, parse_config
from bot.jobs._sql import mask_url

EXIT_STORE = 3  # the job store is unusable or was lost: see the message on stderr
SANDBOX_SPEED = 6.0  # the emulator's Fast model takes 90 s of IMA time: about 15 s here


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="imabot", description="Chat-to-video bot for Discord and Feishu on IMA.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the bot with the platforms the config enables")
    run.add_argument("--config", required=True)
    run.add_argument(
        "--web-only",
        action="store_true",
        help="with no platform enabled, serve only /healthz and /metrics (else that is an error)",
    )
    con = sub.add_parser("console", help="chat with the bot in this terminal")
    src = con.add_mutually_exclusive_group(required=True)
    src.add_argument("--sandbox", action="store_true", help="use a built-in IMA emulator; no keys needed")
    src.add_argument("--config", help="use the real API with this config")
    con.add_argument(
        "--state-dir",
        default=".imabot",
        help="where the sandbox keeps its jobs and settings (default: ./.imabot)",
    )
    con.add_argument(
        "--transcript",
        help="append every message to this JSON-lines file (sends become "
        "idempotent per job and stage across restarts)",
    )
    con.add_argument("--speed", type=float, default=SANDBOX_SPEED, help=argparse.SUPPRESS)
    con.add_argument("--no-wait", action="store_true", help="exit at end of input without waiting for jobs")
    parse = sub.add_parser("parse", help="show how a message is understood")
    parse.add_argument("text")
    parse.add_argument("--images", type=int, default=0)
    parse.add_argument("--json", action="store_true")
    chk = sub.add_parser("check-config", help="validate a config file")
    chk.add_argument("--config", required=True)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "parse":
        return _parse(args)
    if args.command == "check-config":
        return _check(args.config)
    from bot.jobs.store import StoreError

    try:
        from bot.speed import run  # uvloop when installed (imabot[speed])

        return run(_console(args) if args.command == "console" else _run(args.config, args.web_only))
    except KeyboardInterrupt:
        return 130
    except StoreError as exc:  # the store cannot be used (held by another bot, read-only, corrupt)
        print(f"imabot cannot start: {exc}", file=sys.stderr)
        return EXIT_STORE


def _parse(args: argparse.Namespace) -> int:
    from bot.core import detect_locale
    from bot.jobs.notices import render_notes
    from bot.jobs.texts import Texts
    from bot.parsing import parse

    texts = Texts.load()
    locale = detect_locale(args.text)
    result = parse(args.text, max(0, args.images))

    def render(note) -> str:  # type: ignore[no-untyped-def]
        lines = render_notes(texts, [note], locale)
        return lines[0].removeprefix("ℹ️ ") if lines else note.key

    from bot.parsing.kind import decide

    # kind: request | command | chatter | confirm — what the bot does with the message (bot/intake.py).
    out = {**decide(args.text, max(0, args.images)).to_json(), **result.to_json(render)}
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
    return 0


def _check(path: str) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 1
    enabled = [name for name in ("discord", "feishu") if getattr(config, name).enabled]
    store = mask_url(config.store.url) if config.store.url else config.store.path
    print(
        f"config OK: platforms={','.join(enabled) or 'none'} store={store} "
        f"ima={config.ima.base_url} api_key={'set' if config.ima.api_key else 'MISSING'}"
    )
    return 0


def _load(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise SystemExit(f"config error: {exc}") from None


def _logging(config: Config) -> None:
    from bot.logs import setup_logging

    setup_logging(
        level=config.logging.level,
        json_lines=config.logging.json,
        file=config.logging.file,
        secrets=config.secrets(),
    )


def _stop_on_signals(app) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM/SIGINT ask the app to stop gracefully: no new jobs, state recorded, resumed on restart."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, app.stop)


async def _run(path: str, web_only: bool = False) -> int:
    from bot.app import App

    config = _load(path)
    if not (config.discord.enabled or config.feishu.enabled):
        if not web_only:
            print(
                f"imabot: nothing to run: discord.enabled and feishu.enabled are both false in {path}. "
                "Enable a platform (see README), or pass --web-only to serve only /healthz and /metrics.",
                file=sys.stderr,
            )
            return 2
        if not config.web.enabled:
            print(f"imabot: --web-only, but web.enabled is false in {path}.", file=sys.stderr)
            return 2
    _logging(config)
    app = App(config)
    _stop_on_signals(app)
    try:
        await app.start()
        await app.wait()
    finally:
        await app.close()
    if app.fatal is not None:
        print(f"imabot stopped: {app.fatal}", file=sys.stderr)
        return 1
    return 0


async def _console(args: argparse.Namespace) -> int:
    from bot.adapters.console import ConsoleAdapter
    from bot.app import App
    from bot.jobs.texts import Texts

    texts = Texts.load()
    locale = "zh" if os.environ.get("LANG", "").lower().startswith("zh") else "en"

    def say(key: str, **params: object) -> None:
        print(texts(key, locale, **params), flush=True)

    transcript = Path(args.transcript) if args.transcript else None
    async with contextlib.AsyncExitStack() as stack:
        speed = 1.0
        if args.sandbox:
            from bot.sandbox import restore_tasks, sandbox_config
            from ima.emulator import Emulator, EmulatorConfig

            speed = args.speed
            emu = await stack.enter_async_context(Emulator(EmulatorConfig(speed=speed)))
            try:
                config = sandbox_config(emu, args.state_dir)
            except ConfigError as exc:
                raise SystemExit(f"imabot: --state-dir: {exc.problem}") from None
            await restore_tasks(emu, config.store.path)  # so the jobs it was running resume
            say("console.sandbox")
        else:
            config = _load(args.config)
            config = parse_config(
                {
                    **_as_dict(config),
                    "discord": {"enabled": False},
                    "feishu": {"enabled": False},
                    "web": {"enabled": False},
                }
            )
            locale = config.defaults.locale
        _logging(config)
        say("console.state", path=config.store.path)
        say("console.hint")
        console = ConsoleAdapter(
            transcript=transcript, texts=texts, max_image_bytes=int(config.jobs.max_image_mb * 2**20)
        )
        app = App(config, adapters=[console], speedup=speed)
        _stop_on_signals(app)
        try:
            await app.start()
            await app.wait()
            if not args.no_wait and app.fatal is None and not app.stop_requested:
                left = await _unfinished(app)
                if left:
                    say("console.waiting", count=len(left))
                idle = asyncio.ensure_future(app.wait_idle())
                stopped = asyncio.ensure_future(app.wait_stopped())
                await asyncio.wait({idle, stopped}, return_when=asyncio.FIRST_COMPLETED)
                for t in (idle, stopped):
                    t.cancel()
            left = await _unfinished(app)
            if left:
                say("console.stopped", count=len(left))
        finally:
            await app.close()
    if app.fatal is not None:
        print(f"imabot stopped: {app.fatal}", file=sys.stderr)
        return 1
    if app.store_fault:
        return EXIT_STORE
    return 0


async def _unfinished(app) -> list:  # type: ignore[no-untyped-def]
    """The jobs a restart would resume ([] when the store cannot say)."""
    from bot.jobs.store import StoreError

    try:
        return await app.store.unfinished_jobs() if app.store is not None else []
    except StoreError:
        return []


def _as_dict(config: Config) -> dict:
    from dataclasses import asdict

    return asdict(config)


if __name__ == "__main__":
    sys.exit(main())
