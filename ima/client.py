"""ImaClient: one async method per IMA Open API endpoint, over one injected aiohttp session."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import aiohttp

from . import catalog, explain, images, params, polling, reflection, tasks, upload
from ._transport import USER_AGENT, Observer, Timeouts, Transport, api_headers
from .errors import (
    AttributeMismatch,
    CreateOutcomeUnknown,
    CreditMismatch,
    ImaApiError,
    ImaError,
    ImaUsageError,
    ModelNotFound,
    NoMatchingRule,
)
from .models import CreatedTask, ModelId, Note, Product, ResolvedTask, Snapshot, Task, TaskType

log = logging.getLogger("ima.client")

DEFAULT_BASE_URL = "https://api.imastudio.com"
DEFAULT_UPLOAD_BASE_URL = "https://imapi.liveme.com"
PRODUCT_LIST_PATH = "/open/v1/product/list"
CREATE_PATH = "/open/v1/tasks/create"
DETAIL_PATH = "/open/v1/tasks/detail"
_STALE_PRICE_ERRORS = (CreditMismatch, NoMatchingRule, AttributeMismatch)


def _read_file(path: Path) -> bytes | None:
    """The bytes of a regular file, or None when there is none (runs in a worker thread)."""
    try:
        return path.read_bytes() if path.is_file() else None
    except OSError:
        return None


class ImaClient:
    """The IMA Open API for the two Sevio models. Owns no session: the caller opens and closes it."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        upload_base_url: str = DEFAULT_UPLOAD_BASE_URL,
        language: str = "en",
        catalog_ttl: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        user_agent: str = USER_AGENT,
        timeouts: Timeouts | None = None,
        observe: Observer | None = None,
    ) -> None:
        self._session = session
        self._api_key = api_key
        self._transport = Transport(session, observe=observe)  # observe: every IMA request, for metrics
        self._header_cache: dict[str, Mapping[str, str]] = {}
        self.base_url = base_url.rstrip("/")
        self.upload_base_url = upload_base_url.rstrip("/")
        self.language = language
        self.catalog_ttl = catalog_ttl
        self._clock = clock
        self._user_agent = user_agent
        self.timeouts = timeouts or Timeouts()
        self._catalog: dict[TaskType, tuple[float, list[Product]]] = {}
        self._catalog_lock = asyncio.Lock()

    def __repr__(self) -> str:  # never shows the key
        return f"ImaClient(base_url={self.base_url!r})"

    def _headers(self, language: str = "en") -> Mapping[str, str]:
        # Built once per language and read-only: every status poll sends the same headers.
        cached = self._header_cache.get(language)
        if cached is None:
            headers = api_headers(self._api_key, language=language, user_agent=self._user_agent)
            cached = self._header_cache[language] = MappingProxyType(headers)
        return cached

    # ---- products ------------------------------------------------------------------------------

    async def fetch_products(self, task_type: TaskType, *, refresh: bool = False) -> list[Product]:
        """The allowed version leaves for `task_type`, in tree order, cached for `catalog_ttl` seconds.

        Raises ImaApiError (AuthError …) or ImaTransportError."""
        task_type = TaskType(task_type)
        async with self._catalog_lock:
            if not refresh and self._is_cached(task_type):
                return list(self._catalog[task_type][1])
            data = await self._transport.request(
                "GET",
                self.base_url + PRODUCT_LIST_PATH,
                params={"app": "ima", "platform": "web", "category": task_type.value},
                headers=self._headers(self.language),
                timeout_s=self.timeouts.product_list,
                label="product list",
            )
            products = catalog.parse_products(data, category=task_type.value)
            self._catalog[task_type] = (self._clock() + self.catalog_ttl, products)
            return list(products)

    def _is_cached(self, task_type: TaskType) -> bool:
        cached = self._catalog.get(task_type)
        return cached is not None and self._clock() < cached[0]

    def forget_products(self, task_type: TaskType | None = None) -> None:
        """Drops the cached product list (of one task type, or all); no I/O."""
        if task_type is None:
            self._catalog.clear()
        else:
            self._catalog.pop(TaskType(task_type), None)

    async def fetch_product(
        self, task_type: TaskType, model_id: ModelId, *, version: str | None = None
    ) -> Product:
        """The last leaf of `model_id` (or the leaf `version`) for `task_type`; a cache miss refreshes once.

        Raises ModelNotFound, ImaApiError or ImaTransportError."""
        model_id = ModelId(model_id)
        was_cached = self._is_cached(TaskType(task_type))
        products = await self.fetch_products(task_type)
        try:
            return catalog.select_leaf(products, model_id, version=version)
        except ModelNotFound:
            if not was_cached:
                raise
            products = await self.fetch_products(task_type, refresh=True)
            return catalog.select_leaf(products, model_id, version=version)

    def resolve(
        self,
        product: Product,
        task_type: TaskType,
        overrides: Mapping[str, Any],
        *,
        preferred: Mapping[str, Any] | None = None,
    ) -> ResolvedTask:
        """The parameters and rule a create would send (pure; see `ima.params.resolve`): `overrides` is
        what the user said, `preferred` their saved defaults. When a said value had to change and the
        other model's cached leaf offers every said value, the notes end with OTHER_MODEL_OFFERS."""
        resolved = params.resolve(product, task_type, overrides, preferred=preferred)
        note = self._other_model_note(resolved, overrides, preferred)
        return replace(resolved, notes=(*resolved.notes, note)) if note else resolved

    def _other_model_note(
        self, resolved: ResolvedTask, said: Mapping[str, Any], preferred: Mapping[str, Any] | None
    ) -> Note | None:
        """The other-model note from the cached catalog only (no I/O); None when it is not cached."""
        if not explain.said_changes(resolved.notes) or not self._is_cached(resolved.task_type):
            return None
        other = resolved.model_id.other
        try:
            leaf = catalog.select_leaf(self._catalog[resolved.task_type][1], other)
            there = params.resolve(leaf, resolved.task_type, said, preferred=preferred)
        except ImaError:
            return None
        return explain.other_model_offers(resolved.notes, there.notes, other)

    # ---- upload --------------------------------------------------------------------------------

    async def upload_file(self, data: bytes, *, filename: str, content_type: str | None = None) -> str:
        """The public CDN URL (`fdl`) of `data`. Raises UploadError, or AuthError for a rejected key."""
        return await upload.upload_bytes(
            self._transport,
            self._session,
            self._api_key,
            data,
            upload_base_url=self.upload_base_url,
            filename=filename,
            content_type=content_type,
            token_timeout=self.timeouts.upload_token,
            put_timeout=self.timeouts.upload_put,
            user_agent=self._user_agent,
        )

    async def prepare_inputs(self, inputs: Sequence[str | os.PathLike[str]]) -> list[str]:
        """Public URLs for `inputs`, in order: http(s) URLs pass through, local paths (or file:// URLs)
        are uploaded. Every local file is read and checked before the first upload, so a bad one costs
        nothing. Raises ImaUsageError (reason `input_not_found`, or `input_not_image` for bytes that are
        not a jpeg/png/webp/gif/bmp/tiff image) or UploadError."""
        local: dict[int, tuple[Path, bytes]] = {}
        for index, item in enumerate(inputs):
            text = os.fspath(item)
            if isinstance(item, str) and text.lower().startswith(("http://", "https://")):
                continue
            path = Path(text[len("file://") :] if text.lower().startswith("file://") else text)
            data = await asyncio.to_thread(_read_file, path)
            if data is None:
                raise ImaUsageError(
                    f"Input file not found: {path.name}", reason="input_not_found", path=str(path)
                )
            if images.image_type(data) is None:
                raise ImaUsageError(
                    f"Input file is not an image: {path.name} (accepted: {images.FORMATS})",
                    reason="input_not_image",
                    path=str(path),
                )
            local[index] = (path, data)
        urls = []
        for index, item in enumerate(inputs):
            if index not in local:
                urls.append(os.fspath(item))
                continue
            path, data = local[index]
            urls.append(
                await self.upload_file(data, filename=path.name, content_type=images.image_type(data))
            )
        return urls

    async def download(self, url: str, *, max_bytes: int) -> bytes:
        """The bytes of a result URL (video or cover), at most max_bytes (issue 14: continue a result).
        Raises ImaTransportError (code "too_large", an HTTP status, or "transport")."""
        from .download import download_capped

        return await download_capped(self._session, url, max_bytes=max_bytes, user_agent=self._user_agent)

    # ---- create --------------------------------------------------------------------------------

    async def create_task(
        self,
        task_type: TaskType,
        model_id: ModelId,
        prompt: str,
        *,
        input_urls: Sequence[str] = (),
        overrides: Mapping[str, Any] = {},
        preferred: Mapping[str, Any] | None = None,
        version: str | None = None,
        on_attempt: Callable[[int, ResolvedTask], Awaitable[None]] | None = None,
    ) -> CreatedTask:
        """The created task after at most 3 attempts: 500 degrades resolution then duration, 6009 pins
        the cheapest rule's conditions for every priced key the user did not say, 6010 reselects the rule
        and pins its conditions. `overrides` is what the user said, `preferred` their saved defaults
        (see `ima.params.resolve`). `on_attempt(n, resolved)` runs just before each request is sent.
        The notes are the first attempt's (what was changed from the request, and why) plus one per
        reflection step.

        Raises ImaUsageError (bad inputs), ModelNotFound, the typed ImaApiError of the last answer (its
        `details` carry `attempts` and `notes`), ImaTransportError when nothing was sent, and
        CreateOutcomeUnknown when a request was sent but its answer was lost (never resent)."""
        task_type = TaskType(task_type)
        tasks.check_inputs(task_type, prompt, input_urls)
        product = await self.fetch_product(task_type, model_id, version=version)
        plan = reflection.Plan(dict(overrides), dict(preferred or {}))
        notes: list[Note] = []
        for attempt in range(1, reflection.MAX_ATTEMPTS + 1):
            resolved = plan.resolve(product, task_type)
            if attempt == 1:  # later changes come from reflection, whose own note says what and why
                notes.extend(resolved.notes)
                other = self._other_model_note(resolved, overrides, preferred)
                notes.extend([other] if other else [])
            payload = tasks.build_create_payload(resolved, prompt, input_urls)
            if on_attempt is not None:
                await on_attempt(attempt, resolved)
            try:
                data = await self._transport.request(
                    "POST",
                    self.base_url + CREATE_PATH,
                    body=payload,
                    headers=self._headers(),
                    timeout_s=self.timeouts.create,
                    create=True,
                    label="create",
                )
            except ImaApiError as exc:
                last = attempt == reflection.MAX_ATTEMPTS
                step = None if last else reflection.reflect(exc, product, resolved, plan)
                log.info("create attempt %d: code %s; %s", attempt, exc.code, "retry" if step else "give up")
                if step is None:
                    if isinstance(exc, _STALE_PRICE_ERRORS):
                        self.forget_products(task_type)
                    exc.details.update(attempts=attempt, notes=tuple(notes))
                    raise
                plan, note = step
                notes.append(note)
                continue
            except ImaError as exc:
                exc.details.update(attempts=attempt, notes=tuple(notes))
                raise
            task_id = str(data.get("id") or "") if isinstance(data, Mapping) else ""
            if not task_id:
                raise CreateOutcomeUnknown(
                    "The create answer carried no task id", attempts=attempt, notes=tuple(notes)
                )
            return CreatedTask(task_id=task_id, resolved=resolved, attempts=attempt, notes=tuple(notes))
        raise AssertionError("unreachable: the loop returns or raises")

    # ---- detail and polling --------------------------------------------------------------------

    async def fetch_task(self, task_id: str) -> Task:
        """One `tasks/detail` read, its state per the contract's rules.

        Raises ImaApiError or ImaTransportError."""
        data = await self._transport.request(
            "POST",
            self.base_url + DETAIL_PATH,
            body={"task_id": task_id},
            headers=self._headers(),
            timeout_s=self.timeouts.detail,
            label="task detail",
        )
        return tasks.parse_task(data, task_id)

    def watch(
        self,
        task_id: str,
        *,
        interval: float = 8.0,
        max_wait: float = 2400.0,
        estimated_max: float | None = None,
        started_at: float | None = None,
        first_poll_at: float | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> AsyncIterator[Snapshot]:
        """An async generator of Snapshots until the task succeeds (see `ima.polling.watch_task`, which
        also says when the first poll goes out).

        Raises TaskFailed, TaskTimeout, or a non-transient ImaApiError."""
        return polling.watch_task(
            lambda: self.fetch_task(task_id),
            task_id,
            interval=interval,
            max_wait=max_wait,
            estimated_max=estimated_max,
            started_at=started_at,
            first_poll_at=first_poll_at,
            clock=clock,
            sleep=sleep,
        )
