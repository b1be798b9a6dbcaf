"""`imabot run | console | parse | check-config`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import tempfile
from pathlib import Path

from bot.config import Config, ConfigError, load_config, parse_config

SANDBOX_SPEED = 6.0  # the emulator's Fast model takes 90 s of IMA time: about 15 s here


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="imabot", description="Chat-to-video bot for Discord and Feishu on IMA.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the bot with the platforms the config enables")
    run.add_argument("--config", required=True)
    con = sub.add_parser("console", help="chat with the bot in this terminal")
    src = con.add_mutually_exclusive_group(required=True)
    src.add_argument("--sandbox", action="store_true", help="use a built-in IMA emulator; no keys needed")
    src.add_argument("--config", help="use the real API with this config")
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
    try:
        return asyncio.run(_console(args) if args.command == "console" else _run(args.config))
    except KeyboardInterrupt:
        return 130


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

    out = result.to_json(render)
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
    print(
        f"config OK: platforms={','.join(enabled) or 'none'} store={config.store.path} "
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


async def _run(path: str) -> int:
    from bot.app import App

    config = _load(path)
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

    transcript = Path(args.transcript) if args.transcript else None
    async with contextlib.AsyncExitStack() as stack:
        speed = 1.0
        if args.sandbox:
            from ima.emulator import DEFAULT_API_KEY, Emulator, EmulatorConfig

            speed = args.speed
            emu = await stack.enter_async_context(Emulator(EmulatorConfig(speed=speed)))
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="imabot-sandbox-"))
            config = parse_config(
                {
                    "ima": {
                        "api_key": DEFAULT_API_KEY,
                        "base_url": emu.base_url,
                        "upload_base_url": emu.upload_base_url,
                    },
                    "store": {"path": str(Path(tmp) / "sandbox.sqlite3")},
                    "web": {"enabled": False},
                    "logging": {"level": "WARNING"},
                }
            )
            print("imabot sandbox: a local IMA emulator stands in for the real API (no keys needed).")
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
        _logging(config)
        print(
            "Type a request, e.g.  /video 竖屏 10秒 一只小狗在草地上奔跑   (add image paths to use images;"
            " /help, /jobs, /quit)",
            flush=True,
        )
        app = App(config, adapters=[ConsoleAdapter(transcript=transcript)], speedup=speed)
        _stop_on_signals(app)
        try:
            await app.start()
            await app.wait()
            if not args.no_wait and app.fatal is None:
                idle = asyncio.ensure_future(app.wait_idle())
                stopped = asyncio.ensure_future(app.wait_stopped())
                await asyncio.wait({idle, stopped}, return_when=asyncio.FIRST_COMPLETED)
                for t in (idle, stopped):
                    t.cancel()
        finally:
            await app.close()
    return 0


def _as_dict(config: Config) -> dict:
    from dataclasses import asdict

    return asdict(config)


if __name__ == "__main__":
    sys.exit(main())
