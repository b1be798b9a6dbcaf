"""Prometheus metrics for one App: a private registry fed by job listeners, HTTP traces and live gauges."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from bot.core import MessageGone, PlatformError
from bot.jobs.model import FINISHED_STATES, Job, JobState
from ima.client import CREATE_PATH, DETAIL_PATH, PRODUCT_LIST_PATH
from ima.upload import TOKEN_PATH

__all__ = ["CONTENT_TYPE", "Metrics", "endpoint_label"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNFINISHED_STATES = tuple(s for s in JobState if s not in FINISHED_STATES)
FAILED_STATES = frozenset({JobState.FAILED, JobState.TIMED_OUT, JobState.UNCERTAIN})
# Bounded label values: anything else is a presigned upload (PUT) or "other", never a raw path.
KNOWN_PATHS = frozenset({PRODUCT_LIST_PATH, CREATE_PATH, DETAIL_PATH, TOKEN_PATH})
JOB_BUCKETS = (30, 60, 90, 120, 180, 240, 300, 420, 600, 900, 1200, 1800, 2400)
HTTP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _Store(Protocol):
    async def unfinished_jobs(self) -> list[Job]: ...


class _Queue(Protocol):
    @property
    def queued_count(self) -> int: ...
    @property
    def running_count(self) -> int: ...


def endpoint_label(method: str, path: str) -> str:
    """Returns the label for an IMA call: its path when it is a known endpoint, "upload" for a presigned
    PUT, "other" for anything else (so no key-bearing or per-object path ever becomes a label)."""
    if path in KNOWN_PATHS:
        return path
    return "upload" if method.upper() == "PUT" else "other"


class _Live:
    """A collector whose values are read at scrape time from the running parts (nothing to keep in sync)."""

    def __init__(self) -> None:
        self.queue: _Queue | None = None
        self.deduplicated: Callable[[], int] | None = None
        self.adapters: Sequence[Any] = ()

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        queued, running, deduplicated, connected = families
        if self.queue is not None:
            queued.add_metric([], self.queue.queued_count)
            running.add_metric([], self.queue.running_count)
        if self.deduplicated is not None:
            deduplicated.add_metric([], self.deduplicated())
        for adapter in self.adapters:
            connected.add_metric([str(adapter.platform)], 1.0 if adapter.connected else 0.0)
        yield from families

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, CounterMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("imabot_queue_length", "Jobs waiting for a slot in the scheduler"),
            GaugeMetricFamily("imabot_running_slots", "Scheduler slots in use (jobs preparing or running)"),
            CounterMetricFamily("imabot_events_deduplicated", "Platform events dropped as redeliveries"),
            GaugeMetricFamily(
                "imabot_adapter_connected", "1 when the platform connection is up", labels=["platform"]
            ),
        )


class _Leases(Protocol):
    owner: str
    owned: int
    adoptions: int
    renewals: int
    lost: int


class _LeaseLive:
    """Issue 13: this replica's leases, read at scrape time (labelled by replica, so a dashboard summing
    the replicas' scrapes tells them apart)."""

    def __init__(self, leases: _Leases) -> None:
        self._leases = leases

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        owned, adoptions, renewals, lost = families
        le = self._leases
        for family, value in (
            (owned, le.owned),
            (adoptions, le.adoptions),
            (renewals, le.renewals),
            (lost, le.lost),
        ):
            family.add_metric([le.owner], value)
        yield from families

    @staticmethod
    def _families() -> tuple[
        GaugeMetricFamily, CounterMetricFamily, CounterMetricFamily, CounterMetricFamily
    ]:
        return (
            GaugeMetricFamily(
                "imabot_replica_owned_jobs", "Jobs this replica holds a lease on", labels=["replica"]
            ),
            CounterMetricFamily(
                "imabot_replica_adoptions",
                "Jobs and undelivered finals taken over from a replica that stopped renewing (or released them)",
                labels=["replica"],
            ),
            CounterMetricFamily("imabot_replica_lease_renewals", "Lease renewal rounds", labels=["replica"]),
            CounterMetricFamily(
                "imabot_replica_leases_lost",
                "Jobs this replica worked on that another one holds now",
                labels=["replica"],
            ),
        )


class Metrics:
    """Every metric of one App in its own registry (no global state: two Apps never share a counter).

    Feed it with `on_job` (a runner listener), `on_platform_error` (Delivery's hook) and `observe_ima`
    (ImaClient's observer); `bind` points the live gauges at the scheduler and adapters.
    """

    def __init__(self, *, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.jobs = Gauge("imabot_jobs", "Unfinished jobs by state", ["state"], registry=r)
        self.finished = Counter(
            "imabot_jobs_finished", "Jobs that reached a final state", ["state", "model"], registry=r
        )
        self.job_duration = Histogram(
            "imabot_job_duration_seconds",
            "From IMA task creation to the final state, per model",
            ["model", "state"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.ima_latency = Histogram(
            "imabot_ima_request_duration_seconds",
            "IMA HTTP calls by endpoint and status",
            ["endpoint", "status"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.ima_errors = Counter(
            "imabot_ima_errors",
            "Failed jobs by IMA business code (code none: no IMA code) and error key",
            ["code", "key"],
            registry=r,
        )
        self.platform_errors = Counter(
            "imabot_platform_errors",
            "Platform API refusals of sends and edits",
            ["platform", "status"],
            registry=r,
        )
        self._live = _Live()
        r.register(self._live)
        for state in UNFINISHED_STATES:
            self.jobs.labels(state.value).set(0)
        self._states: dict[str, JobState] = {}  # unfinished job -> the state the gauge counts it in
        self._latency: dict[tuple[str, str], Any] = {}  # (endpoint, status) -> its histogram child

    # ---- wiring ------------------------------------------------------------------------------------

    async def load(self, store: _Store) -> None:
        """Counts the store's unfinished jobs (call before the runner resumes them). Raises StoreError."""
        for job in await store.unfinished_jobs():
            self.on_job(job)

    def bind(
        self,
        *,
        queue: _Queue | None = None,
        deduplicated: Callable[[], int] | None = None,
        adapters: Sequence[Any] = (),
    ) -> None:
        """Points the live gauges at the scheduler (queue), the dedup counter and the adapters."""
        self._live.queue, self._live.deduplicated, self._live.adapters = queue, deduplicated, adapters

    def bind_leases(self, leases: _Leases | None) -> None:
        """Issue 13: exports this replica's lease figures (nothing when the store has one process)."""
        if leases is not None:
            self.registry.register(_LeaseLive(leases))

    def render(self) -> bytes:
        """Returns the registry in the Prometheus text format (serve it with CONTENT_TYPE)."""
        return generate_latest(self.registry)

    # ---- feeds -------------------------------------------------------------------------------------

    def on_job(self, job: Job) -> None:
        """A runner listener: moves the job between state gauges and counts it once when it finishes."""
        old = self._states.get(job.id)
        if not job.finished:
            if old is not job.state:
                if old is not None:
                    self.jobs.labels(old.value).dec()
                self.jobs.labels(job.state.value).inc()
                self._states[job.id] = job.state
            return
        if old is not None:
            self.jobs.labels(old.value).dec()
            del self._states[job.id]
        # The runner notifies a final state twice: at the transition, then with the delivered message's
        # ref (result_ref). Only the first counts.
        if job.result_ref:
            return
        model = job.spec.model_id.value
        self.finished.labels(job.state.value, model).inc()
        if job.started_at is not None and job.finished_at is not None and job.finished_at >= job.started_at:
            self.job_duration.labels(model, job.state.value).observe(job.finished_at - job.started_at)
        if job.state in FAILED_STATES:
            self.ima_errors.labels(job.error_code or "none", job.error_key or "none").inc()

    def forget(self, job_id: str) -> None:
        """A runner hook: the job left this replica unfinished (another replica holds it now)."""
        old = self._states.pop(job_id, None)
        if old is not None:
            self.jobs.labels(old.value).dec()

    def on_platform_error(self, platform: str, error: PlatformError) -> None:
        """Delivery's hook: counts one refused send or edit."""
        status = "gone" if isinstance(error, MessageGone) else str(error.status or "none")
        self.platform_errors.labels(platform, status).inc()

    def observe_ima(self, method: str, path: str, status: str, seconds: float) -> None:
        """ImaClient's observer: times one IMA call by endpoint and status (see ima._transport.Observer)."""
        key = (endpoint_label(method, path), status)
        child = self._latency.get(key)
        if child is None:  # labels() costs a lock and a tuple build: once per label pair, not per call
            child = self._latency[key] = self.ima_latency.labels(*key)
        child.observe(seconds)
