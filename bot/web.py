"""The bot's HTTP server: /healthz, /metrics (Prometheus) and the Feishu webhook route /feishu/events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from aiohttp import web

from bot.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger("imabot.web")

WEBHOOK_PATH = "/feishu/events"
STORE_TIMEOUT_S = 2.0
MAX_BODY = 1024 * 1024  # Feishu pushes are a few KB; anything bigger is refused with 413

WebhookHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Store(Protocol):
    async def ping(self) -> bool: ...


class _App(Protocol):
    """What the server reads from the App (the composition root)."""

    store: _Store | None
    adapters: Sequence[Any]
    metrics: Metrics


def webhook_handlers(adapters: Sequence[Any]) -> list[WebhookHandler]:
    """Returns the webhook entry points among adapters: those offering `handle_webhook(request)` (the
    Feishu adapter; it answers 404 itself when its transport is the long connection)."""
    return [a.handle_webhook for a in adapters if callable(getattr(a, "handle_webhook", None))]


class WebServer:
    """Serves health, metrics and webhooks on host:port until close(). Port 0 picks a free port; the
    bound one is `port` after start()."""

    def __init__(self, app: _App, *, host: str = "127.0.0.1", port: int = 8080) -> None:
        self._app = app
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    def build(self) -> web.Application:
        """Returns the aiohttp application with every route this bot serves."""
        app = web.Application(client_max_size=MAX_BODY, middlewares=[_no_tracebacks])
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        hooks = webhook_handlers(self._app.adapters)
        if len(hooks) > 1:
            raise ValueError("more than one adapter wants the webhook route")
        if hooks:
            app.router.add_post(WEBHOOK_PATH, hooks[0])
        return app

    async def start(self) -> None:
        """Binds and serves. Raises OSError when the port is taken."""
        # No access log: it would add a line per scrape and per push, and says nothing the metrics don't.
        runner = web.AppRunner(self.build(), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        bound = runner.addresses[0]  # the address really listened on (0.0.0.0 = every interface)
        log.info(
            "web server on %s, listening on %s:%d (healthz, metrics%s)",
            self.url,
            bound[0],
            bound[1],
            ", feishu webhook" if webhook_handlers(self._app.adapters) else "",
        )

    async def close(self) -> None:
        """Stops serving; idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # ---- routes ------------------------------------------------------------------------------------

    async def healthz(self, _request: web.Request) -> web.Response:
        """200 when the store answers and every adapter is connected, else 503; the body says which."""
        store = self._app.store
        store_ok = False
        if store is not None:
            try:
                store_ok = await asyncio.wait_for(store.ping(), STORE_TIMEOUT_S)
            except TimeoutError:
                store_ok = False
        adapters = {str(a.platform): bool(a.connected) for a in self._app.adapters}
        # A failed write makes the store unhealthy until a write commits again (reads may still work).
        store_error = str(getattr(store, "write_error", "") or "")
        # A store file deleted or replaced under us still answers queries: that fault is known apart.
        store_error = store_error or str(getattr(self._app, "store_fault", "") or "")
        store_ok = store_ok and not store_error
        healthy = store_ok and all(adapters.values())
        body: dict[str, Any] = {
            "status": "ok" if healthy else "unhealthy",
            "store": store_ok,
            "adapters": adapters,
        }
        if store_error:
            body["store_error"] = store_error
        runner = getattr(self._app, "runner", None)
        if healthy and runner is not None and runner.resuming:
            body["status"] = "resuming"  # serving, while the previous run's jobs are picked up
        return web.json_response(body, status=200 if healthy else 503)

    async def metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=self._app.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


@web.middleware
async def _no_tracebacks(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """An unexpected error is logged here and answered with a bare 500 (no traceback leaves the process)."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return web.json_response({"msg": "internal error"}, status=500)
