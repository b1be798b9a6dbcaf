"""Running the emulator: the aiohttp apps, the Emulator object tests hold, and `serve` for the CLI."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from types import TracebackType
from typing import Any

from aiohttp import web

from .admin import add_admin_routes
from .api import add_api_routes
from .config import DEFAULT_API_KEY, EmulatorConfig
from .faults import FaultSet
from .replies import STATE, log_requests
from .state import Clock, EmulatorState, RequestLog
from .tasks import EmuTask
from .upload import add_cdn_routes, add_upload_routes

API, UPLOAD = "api", "upload"
_SHUTDOWN_TIMEOUT = 2.0
_ANY_HOST = {"0.0.0.0", "::", ""}


def create_app(
    config: EmulatorConfig | None = None,
    *,
    clock: Clock | None = None,
    roles: Collection[str] = (API, UPLOAD),
    state: EmulatorState | None = None,
) -> web.Application:
    """An aiohttp app serving the given roles ("api": /open/v1 + admin, "upload": token + PUT; both: /cdn).

    Pass `state` to share one emulator between two apps (API and upload on separate ports);
    otherwise a new state is built from `config` and `clock`. The state is at `app[STATE]`.
    """
    if state is None:
        state = EmulatorState(config or EmulatorConfig(), clock or time.monotonic)
    app = web.Application(middlewares=[log_requests])
    app[STATE] = state
    if API in roles:
        add_api_routes(app)
        add_admin_routes(app)
    if UPLOAD in roles:
        add_upload_routes(app)
    add_cdn_routes(app)
    return app


class Emulator:
    """A running IMA Open API emulator on loopback. Use `async with Emulator(cfg) as emu:`."""

    def __init__(self, config: EmulatorConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.state = EmulatorState(self.config, clock or time.monotonic)
        self.base_url = ""
        self.upload_base_url = ""
        self._runners: list[web.AppRunner] = []

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, upload_port: int | None = None
    ) -> Emulator:
        """Bind and serve; a separate upload port if given (or configured). Returns self."""
        if self._runners:
            raise RuntimeError("emulator already started")
        self.state.stopping.clear()
        upload_port = upload_port if upload_port is not None else self.config.upload_port
        try:
            if upload_port is None:
                self.base_url = await self._serve(create_app(state=self.state), host, port)
                self.upload_base_url = self.base_url
            else:
                self.base_url = await self._serve(create_app(roles=(API,), state=self.state), host, port)
                app = create_app(roles=(UPLOAD,), state=self.state)
                self.upload_base_url = await self._serve(app, host, upload_port)
        except BaseException:
            await self.stop()
            raise
        return self

    async def _serve(self, app: web.Application, host: str, port: int) -> str:
        # No access log: its request lines would carry the upload call's key-bearing query string.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        shown = "127.0.0.1" if host in _ANY_HOST else (f"[{host}]" if ":" in host else host)
        return f"http://{shown}:{bound}"

    async def stop(self) -> None:
        """Stop serving; pending injected delays end at once. Safe to call twice."""
        self.state.stopping.set()
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def requests(self) -> RequestLog:
        return self.state.requests

    @property
    def tasks(self) -> dict[str, EmuTask]:
        return self.state.tasks

    @property
    def faults(self) -> FaultSet:
        return self.state.faults

    @property
    def mirror_status(self) -> bool:
        return self.state.mirror_status

    @mirror_status.setter
    def mirror_status(self, value: bool) -> None:
        self.state.mirror_status = bool(value)

    def balance(self, key: str) -> int:
        """The key's remaining points; raises KeyError for an unknown key."""
        return self.state.balances[key]

    def set_balance(self, key: str, points: int) -> None:
        """Set (or add) a key with this balance."""
        self.state.balances[key] = int(points)

    def set_variants(self, **changes: Any) -> None:
        """Switch served spellings (Variants fields) at runtime."""
        self.state.set_variants(**changes)

    def advance(self, seconds: float) -> float:
        """Move emulator time forward on top of the injected clock; returns the new time."""
        return self.state.advance(seconds)

    def reset(self) -> None:
        """Back to the configured state: no tasks, uploads, log; configured balances, faults, mode."""
        self.state.reset()


async def serve(host: str, port: int, *, speed: float, config_path: str | None) -> None:
    """Run an emulator until cancelled, printing its URLs; raises EmulatorConfigError on a bad config."""
    config = EmulatorConfig.from_file(config_path) if config_path else EmulatorConfig()
    config = config.with_speed(speed)
    emulator = Emulator(config)
    await emulator.start(host, port)
    try:
        print(f"IMA emulator (speed x{config.speed:g})", flush=True)
        print(f"  api:    {emulator.base_url}", flush=True)
        print(f"  upload: {emulator.upload_base_url}", flush=True)
        print(f"  admin:  {emulator.base_url}/_emulator/state", flush=True)
        if DEFAULT_API_KEY in config.api_keys:
            print(f"  built-in test key: {DEFAULT_API_KEY}", flush=True)
        await asyncio.Event().wait()
    finally:
        await emulator.stop()
