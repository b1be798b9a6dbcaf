"""The composition root: builds and owns every resource (HTTP session, store, client, runner, adapters)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

import aiohttp
from prometheus_client import Counter

from bot.config import Config
from bot.core import Adapter
from bot.dispatch import Dispatcher, DispatchSettings
from bot.jobs._lock import StoreLock
from bot.jobs.runner import JobRunner, RunnerSettings
from bot.jobs.scheduler import Scheduler
from bot.jobs.store import JobStore, StoreError
from bot.jobs.store_identity import StoreWatch, with_advice
from bot.jobs.texts import Texts
from bot.metrics import Metrics
from bot.parsing.kind import warm as warm_parser
from ima import ImaClient
from ima.models import ModelId

log = logging.getLogger("imabot.app")

PURGE_INTERVAL_S = 3600.0  # expired dedup keys are deleted this often
STORE_CHECK_INTERVAL_S = 15.0  # how often the store file is checked for deletion or replacement


def build_adapters(config: Config, texts: Texts) -> list[Adapter]:
    """The platform adapters the config enables (imported only when enabled: each SDK is heavy)."""
    adapters: list[Adapter] = []
    if config.discord.enabled:
        from bot.adapters.discord import DiscordAdapter, DiscordSettings

        d = config.discord
        adapters.append(
            DiscordAdapter(
                DiscordSettings(
                    token=d.token,
                    guild_allowlist=frozenset(d.guild_allowlist),
                    channel_allowlist=frozenset(d.channel_allowlist),
                    upload_video=d.upload_video,
                    max_image_bytes=int(config.jobs.max_image_mb * 2**20),
                    min_edit_interval=d.min_edit_interval,
                    command_guild_ids=tuple(d.command_guild_ids),
                    shard_count=d.shard_count,  # issue 13: replicas split the gateway shards
                    shard_ids=tuple(d.shard_ids),
                ),
                texts=texts,
            )
        )
    if config.feishu.enabled:
        from bot.adapters.feishu import FeishuAdapter, FeishuSettings

        f = config.feishu
        adapters.append(
            FeishuAdapter(
                FeishuSettings(
                    app_id=f.app_id,
                    app_secret=f.app_secret,
                    domain=f.domain,
                    transport=f.transport,
                    encrypt_key=f.encrypt_key,
                    verification_token=f.verification_token,
                    chat_allowlist=frozenset(f.chat_allowlist),
                    send_video_file=f.send_video_file,
                    max_image_bytes=int(config.jobs.max_image_mb * 2**20),
                    min_patch_interval=f.min_patch_interval,
                    webhook_max_age=f.webhook_max_age,
                ),
                texts=texts,
            )
        )
    return adapters


class App:
    """Start with `await app.start()`, stop with `await app.close()`; `await app.wait()` returns when an
    adapter ends (end of console input, a fatal platform error) or `stop()` is called."""

    def __init__(
        self,
        config: Config,
        *,
        adapters: Sequence[Adapter] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        speedup: float = 1.0,
    ) -> None:
        self.config = config
        self.texts = Texts.load()
        self._extra_adapters = list(adapters or [])
        self._clock, self._sleep, self._speedup = clock, sleep, speedup
        self._wake = asyncio.Event()  # an adapter ended or a stop was asked for
        self._stop_requested = asyncio.Event()
        self._changed = asyncio.Event()  # a job changed state
        self._adapter_tasks: list[asyncio.Task[None]] = []
        self.adapters: list[Adapter] = []
        self.session: aiohttp.ClientSession | None = None
        self.store: JobStore | None = None
        self.web = None
        self.metrics = Metrics()  # its own registry: two Apps in one process never share a counter
        self._housekeeping: asyncio.Task[None] | None = None
        self.fatal: BaseException | None = None
        self._store_lock: StoreLock | None = None  # one owner per store (bot/jobs/_lock.py)
        self.store_watch: StoreWatch | None = None
        self._store_checks: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        c = self.config
        # Before anything else: a second process on a SQLite store must stop here (raises StoreLocked).
        # A PostgreSQL store (issue 13) is shared by replicas: leases, not a file lock, divide the work.
        if not c.store.url:
            self._store_lock = StoreLock.acquire(c.store.path)
        self.session = aiohttp.ClientSession()  # IMA calls are timed by the client's observer below
        try:
            self.store = await JobStore.open(c.store.url or c.store.path, clock=self._clock)
        except StoreError as exc:
            raise StoreError(with_advice(str(exc)) if not c.store.url else str(exc)) from exc
        if not c.store.url:  # a database server has no file to be deleted or replaced under us
            self.store_watch = StoreWatch(c.store.path)
        self.client = ImaClient(
            self.session,
            c.ima.api_key,
            base_url=c.ima.base_url,
            upload_base_url=c.ima.upload_base_url,
            language=c.ima.language,
            catalog_ttl=c.ima.catalog_ttl,
            observe=self.metrics.observe_ima,
        )
        self.scheduler = Scheduler(
            global_limit=c.jobs.global_concurrency, per_user_limit=c.jobs.per_user_concurrency
        )
        self.adapters = [*build_adapters(c, self.texts), *self._extra_adapters]
        s = self._speedup
        self.runner = JobRunner(
            store=self.store,
            client=self.client,
            scheduler=self.scheduler,
            messengers={a.platform: a for a in self.adapters},
            texts=self.texts,
            settings=RunnerSettings(
                poll_interval=c.jobs.poll_interval / s,
                max_wait=c.jobs.max_wait / s,
                cadence={
                    ModelId.PRO: c.jobs.progress_interval_pro / s,
                    ModelId.FAST: c.jobs.progress_interval_fast / s,
                },
                history_min_samples=c.jobs.history_min_samples,
                max_image_bytes=int(c.jobs.max_image_mb * 2**20),
                daily_credit_budget=c.jobs.daily_credit_budget,
                time_scale=s,
                # issue 13: leases only where several replicas can share the store (PostgreSQL)
                lease_seconds=c.jobs.lease_seconds / s if c.store.url else 0.0,
                replica_id=c.jobs.replica_id,
            ),
            clock=self._clock,
            sleep=self._sleep,
        )
        self.dispatcher = Dispatcher(
            self.store,
            self.runner,
            self.texts,
            DispatchSettings(
                default_model=ModelId(c.defaults.model),
                default_duration=c.defaults.duration,
                default_aspect_ratio=c.defaults.aspect_ratio,
                default_resolution=c.defaults.resolution,
                default_locale=c.defaults.locale,
                max_images=c.jobs.max_images,
                max_image_bytes=int(c.jobs.max_image_mb * 2**20),
                max_pending_per_user=c.jobs.max_pending_per_user,
                event_ttl=c.jobs.dedup_hours * 3600,
                daily_credit_budget=c.jobs.daily_credit_budget,
                max_storyboard_shots=c.jobs.max_storyboard_shots,  # issue 14
                confirm_above_credits=c.jobs.confirm_above_credits,  # issue 14
                min_prompt_chars=c.jobs.min_prompt_chars,  # issue 9
            ),
            clock=self._clock,
        )
        self.runner.listeners.append(lambda _job: self._changed.set())
        self.runner.listeners.append(self.metrics.on_job)
        self.runner.delivery.on_platform_error = self.metrics.on_platform_error
        dispatcher = self.dispatcher
        self.metrics.bind(
            queue=self.scheduler, deduplicated=lambda: dispatcher.deduplicated, adapters=self.adapters
        )
        self.metrics.bind_leases(self.runner.leases)  # issue 13: per-replica lease figures
        if self.runner.leases is None:
            await self.metrics.load(self.store)  # before the runner resumes (and moves) stored jobs
        else:
            # Replicas: the gauges count the jobs this replica works on, taken in one by one (admitted,
            # adopted) and given up when another replica holds them; the store's total is every replica's.
            self.runner.drop_listeners.append(self.metrics.forget)
        await purge_events(self.store)
        self._housekeeping = asyncio.create_task(
            purge_events_forever(self.store, interval=PURGE_INTERVAL_S), name="imabot-purge-events"
        )
        self._housekeeping.add_done_callback(_log_crash)
        self._store_checks = asyncio.create_task(self._check_store_forever(), name="imabot-store-check")
        self._store_checks.add_done_callback(_log_crash)
        # The phrase tables compile here, off the loop and before any adapter takes a message.
        await asyncio.to_thread(warm_parser)
        undeliverable = Counter(
            "imabot_finals_undeliverable",
            "Final messages given up on after hours of refused deliveries",
            ["platform"],
            registry=self.metrics.registry,
        )
        self.runner.outbox.on_undeliverable = lambda job: undeliverable.labels(job.origin.platform).inc()
        store_faults = Counter(
            "imabot_store_write_failures",
            "Job store writes that failed (and were retried)",
            registry=self.metrics.registry,
        )
        self.runner.store_listeners.append(lambda _exc: store_faults.inc())
        store = self.store
        for adapter in self.adapters:  # a push the store cannot record is not acked (pushed again later)
            if hasattr(adapter, "refuse_reason"):
                adapter.refuse_reason = lambda: store.write_error
        # Platforms and /healthz first: every delivery of the resume needs a running adapter, and the
        # resume and the outbox run in the runner's own tasks, so nothing here waits for a platform.
        if c.web.enabled:
            from bot.web import WebServer

            self.web = WebServer(self, host=c.web.host, port=c.web.port)
            await self.web.start()
        for adapter in self.adapters:
            task = asyncio.create_task(adapter.run(self.dispatcher), name=f"adapter-{adapter.platform}")
            task.add_done_callback(self._adapter_ended)
            self._adapter_tasks.append(task)
        await self.runner.start(ready=self._adapters_ready)
        await self.dispatcher.storyboards.resume()  # issue 14: shots whose turn came while we were down

    async def _adapters_ready(self) -> None:
        """Returns once every adapter can send (Feishu: token and transport; Discord: gateway ready)."""
        waits = [
            w()
            for a in self.adapters
            if (w := getattr(a, "wait_started", None) or getattr(a, "wait_ready", None))
        ]
        await asyncio.gather(*waits)

    @property
    def store_fault(self) -> str:
        """Why the store is no longer trusted (deleted or replaced under us), "" while it is."""
        return self.store_watch.fault if self.store_watch is not None else ""

    def check_store(self) -> str:
        """Checks that the store file is still the one opened; once it is not, new jobs are refused (and
        /healthz is unhealthy). Returns the fault, "" when all is well."""
        if self.store_watch is None:
            return ""
        fault = self.store_watch.check()
        if fault and hasattr(self, "dispatcher"):
            self.dispatcher.refuse_new = fault
        return fault

    async def _check_store_forever(self) -> None:
        """check_store() every STORE_CHECK_INTERVAL_S until it finds a fault (one stat(): fine on the loop)."""
        while True:
            if self.check_store():
                return
            await asyncio.sleep(STORE_CHECK_INTERVAL_S)

    def _adapter_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.fatal = task.exception()
            log.error("adapter %s stopped: %s", task.get_name(), self.fatal)
        self._wake.set()

    def stop(self) -> None:
        """Asks the app to stop (SIGTERM/SIGINT); `wait()` and `wait_stopped()` return."""
        self._stop_requested.set()
        self._wake.set()

    async def wait(self) -> None:
        await self._wake.wait()

    async def wait_stopped(self) -> None:
        await self._stop_requested.wait()

    @property
    def stop_requested(self) -> bool:
        """Whether stop() was called (a signal), as opposed to an adapter ending."""
        return self._stop_requested.is_set()

    async def wait_idle(self) -> None:
        """Returns when no job is unfinished and every final message is delivered."""
        assert self.store is not None
        while True:
            self._changed.clear()
            if not await self.store.unfinished_jobs() and not await self.store.undelivered_jobs():
                return
            # Woken by the runner on every change; the timeout only guards against a missed wake-up.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=5.0)

    async def close(self) -> None:
        """Stops taking jobs, records state, and closes every resource in reverse order of opening;
        idempotent (a second call returns at once)."""
        if self._closed:
            return
        self._closed = True
        self.check_store()  # a store lost since the last check is reported (and fails the exit status)
        # Intake first, the platforms' sending side last: while the runner settles (creates on the wire
        # come back, finals on their way land) its messages must still reach the platforms. A job whose
        # "creating" notice failed on a closed session was left CREATING, and resumed as uncertain.
        for adapter in self.adapters:
            try:
                await adapter.stop_intake()
            except Exception:  # one adapter's failure must not keep the others (and the store) open
                log.exception("stopping the intake of %s failed", adapter.platform)
        if hasattr(self, "dispatcher"):
            await self.dispatcher.storyboards.close()  # issue 14: before the store it writes to closes
        if hasattr(self, "runner"):
            await self.runner.close()
        for adapter in self.adapters:
            with contextlib.suppress(Exception):
                await adapter.close()
        for task in self._adapter_tasks:
            task.cancel()
        await asyncio.gather(*self._adapter_tasks, return_exceptions=True)
        if self.web is not None:
            await self.web.close()
        for bg in (self._housekeeping, self._store_checks):
            if bg is not None:
                bg.cancel()
                await asyncio.gather(bg, return_exceptions=True)
        if self.store is not None:
            await self.store.close()
        if self._store_lock is not None:
            self._store_lock.release()
        if self.session is not None:
            await self.session.close()


async def purge_events(store: JobStore) -> int:
    """Deletes expired dedup keys; returns how many (0 when the store fails: it is only housekeeping)."""
    try:
        purged = await store.purge_events()
    except StoreError as exc:
        log.warning("purging expired event keys failed: %s", exc)
        return 0
    if purged:
        log.info("purged %d expired event keys", purged)
    return purged


async def purge_events_forever(
    store: JobStore, *, interval: float, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> None:
    """Purges expired dedup keys every interval seconds (wall time, whatever clock the jobs use); never
    returns, cancel it."""
    while True:
        await sleep(interval)
        await purge_events(store)


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s crashed", task.get_name(), exc_info=task.exception())
