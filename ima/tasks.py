"""Pure task wire formats: input checks, the exact create payload, and reading a task detail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ImaUsageError
from .models import Media, ResolvedTask, Task, TaskState, TaskType

MAX_REFERENCE_IMAGES = 9


def check_inputs(task_type: TaskType, prompt: str, input_urls: Sequence[str]) -> None:
    """Nothing if the inputs suit the task type; raises ImaUsageError with a `reason` detail
    (`prompt_required`, `no_images_for_text`, `image_required`, `two_frames_required`, `too_many_images`)."""
    count = len(input_urls)
    task_type = TaskType(task_type)
    if task_type is TaskType.TEXT_TO_VIDEO:
        if not prompt.strip():
            raise ImaUsageError("text_to_video needs a prompt", reason="prompt_required")
        if count:
            raise ImaUsageError("text_to_video takes no images", reason="no_images_for_text", count=count)
    elif task_type is TaskType.IMAGE_TO_VIDEO and count < 1:
        raise ImaUsageError("image_to_video needs an image", reason="image_required", count=count)
    elif task_type is TaskType.FIRST_LAST_FRAME_TO_VIDEO and count != 2:
        raise ImaUsageError(
            "first_last_frame_to_video needs exactly two images (first, last)",
            reason="two_frames_required",
            count=count,
        )
    elif task_type is TaskType.REFERENCE_IMAGE_TO_VIDEO and not 1 <= count <= MAX_REFERENCE_IMAGES:
        reason = "image_required" if count < 1 else "too_many_images"
        raise ImaUsageError(
            f"reference_image_to_video needs 1 to {MAX_REFERENCE_IMAGES} images", reason=reason, count=count
        )


def build_create_payload(resolved: ResolvedTask, prompt: str, input_urls: Sequence[str]) -> dict[str, Any]:
    """The exact `tasks/create` body (contract §5): `model_version` is the leaf id, `category` equals
    `task_type`, `attribute_id`/`credit`/`cast` come from the one selected rule, and `src_img_url`
    mirrors the inner `input_images`."""
    urls = list(input_urls)
    rule, product = resolved.rule, resolved.product
    inner = {k: v for k, v in resolved.params.items() if k.strip().lower() != "default"}
    try:
        n = int(inner.get("n") or 1)
    except (TypeError, ValueError):
        n = 1
    inner.update(
        prompt=prompt,
        n=n,
        input_images=urls,
        cast={"points": rule.points, "attribute_id": rule.attribute_id},
    )
    task_type = TaskType(resolved.task_type).value
    return {
        "task_type": task_type,
        "enable_multi_model": False,
        "src_img_url": list(urls),
        "parameters": [
            {
                "attribute_id": rule.attribute_id,
                "model_id": product.model_id,
                "model_name": product.name,
                "model_version": product.id,
                "app": "ima",
                "platform": "web",
                "category": task_type,
                "credit": rule.points,
                "parameters": inner,
            }
        ],
    }


def _status_number(value: Any) -> int:
    """`resource_status` as an int: null, "" and anything unreadable count as 0 (processing)."""
    if value is None or isinstance(value, bool):
        return 0
    try:
        return int(float(str(value).strip() or 0))
    except (ValueError, OverflowError):
        return 0


def _text(raw: Mapping[str, Any], *keys: str) -> str:
    for key in keys:
        value = raw.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def parse_media(raw: Mapping[str, Any]) -> Media:
    """One detail media; the URL is `url`, else `watermark_url`, else `preview_url`; the cover is
    `cover_url` or `cover`; the error is `error_msg` or `remark`."""
    return Media(
        resource_status=_status_number(raw.get("resource_status")),
        status=str(raw.get("status") or "").strip().lower(),
        url=_text(raw, "url", "watermark_url", "preview_url"),
        cover_url=_text(raw, "cover_url", "cover"),
        error=_text(raw, "error_msg", "remark"),
        raw=dict(raw),
    )


def task_state(medias: Sequence[Media]) -> tuple[TaskState, str]:
    """(state, error text) by the contract's rules (§6): any status 2 → failed, any 3 → deleted;
    all 1 → failed if any says "failed", succeeded if the first has a URL; otherwise processing."""
    for media in medias:
        if media.resource_status == 2:
            return TaskState.FAILED, media.error or "unknown"
    for media in medias:
        if media.resource_status == 3:
            return TaskState.DELETED, "Task was deleted"
    if medias and all(m.resource_status == 1 for m in medias):
        failed = next((m for m in medias if m.status == "failed"), None)
        if failed is not None:
            return TaskState.FAILED, failed.error or "unknown"
        if medias[0].url:
            return TaskState.SUCCEEDED, ""
    return TaskState.PROCESSING, ""


def parse_task(data: Any, task_id: str) -> Task:
    """A Task from a `tasks/detail` `data` (missing or null `medias` means still processing)."""
    data = data if isinstance(data, Mapping) else {}
    medias = tuple(parse_media(m) for m in data.get("medias") or () if isinstance(m, Mapping))
    state, error = task_state(medias)
    return Task(id=str(data.get("id") or task_id), medias=medias, state=state, error=error)
