"""Pure builders for a job's final message: the video, or a failure that says what to do."""

from __future__ import annotations

from bot.core import Action, Button, ButtonStyle, Notice, NoticeKind
from ima.models import API_KEY_URL, RECORDS_URL, SUBSCRIPTION_URL

from .model import Job, JobState
from .notices import model_name, prompt_line, reflected_line, summary
from .progress import format_duration
from .texts import Texts
from .variations import success_buttons


def _retry_buttons(texts: Texts, job: Job) -> tuple[Button, ...]:
    other = job.spec.model_id.other
    return (
        Button(texts("button.retry", job.locale), Action.RETRY, job.id, style=ButtonStyle.PRIMARY),
        Button(
            texts("button.other_model", job.locale, model=model_name(texts, other, job.locale)),
            Action.OTHER_MODEL,
            job.id,
        ),
    )


def success(texts: Texts, job: Job, *, elapsed: float) -> Notice:
    loc = job.locale
    lines = [
        texts("success.video", loc, url=job.result_url),
        texts(
            "success.details",
            loc,
            model=model_name(texts, job.spec.model_id, loc),
            summary=summary(texts, job),
            elapsed=format_duration(texts, elapsed, loc),
            credit=job.credit or 0,
        ),
        *reflected_line(texts, job),
        *prompt_line(texts, job),
    ]
    buttons = (
        Button(texts("button.open_video", loc), url=job.result_url, style=ButtonStyle.LINK),
        *success_buttons(texts, job),  # issue 14: Continue ▶ and the one-tap variations
    )
    return Notice(
        NoticeKind.SUCCESS,
        texts("success.title", loc),
        tuple(lines),
        progress=100,
        buttons=buttons,
        video_url=job.result_url,
        cover_url=job.cover_url,
        locale=loc,
        job_id=job.id,
        mention_user_id=job.origin.user_id,
    )


# Error key → (reason text key, hint text key, link button) for the failure message.
_LINKS = {
    "auth": ("button.api_key", API_KEY_URL),
    "insufficient_credits": ("button.subscription", SUBSCRIPTION_URL),
    "subscription_required": ("button.subscription", SUBSCRIPTION_URL),
    "create_unknown": ("button.records", RECORDS_URL),
}
_HINTS = {
    "auth": "error.auth_hint",
    "insufficient_credits": "error.insufficient_credits_hint",
    "subscription_required": "error.subscription_required_hint",
    "transport": "error.retry_later_hint",
    "server_error": "error.settings_hint",
    "no_matching_rule": "error.settings_hint",
    "attribute_mismatch": "error.settings_hint",
    "budget_exceeded": "error.budget_hint",
    "attachment_not_image": "failure_hint.image",
    "attachment_too_large": "failure_hint.image",
    "attachment_download_failed": "failure_hint.download",
}
# Failures that happen before IMA accepted a task: nothing was charged.
_NOT_CHARGED = {
    "auth",
    "insufficient_credits",
    "subscription_required",
    "credit_mismatch",
    "no_matching_rule",
    "attribute_mismatch",
    "server_error",
    "transport",
    "upload",
    "usage",
    "model_not_found",
    "api",
    "attachment_not_image",
    "attachment_too_large",
    "attachment_download_failed",
    "attachment_too_many_pixels",  # issue 17: refused before any upload
    "attachment_bad_host",
    # issue 14: the last frame to continue from could not be had (before any create)
    "shots_source_gone",
    "shots_source_too_large",
    "shots_download_failed",
    "shots_unreadable_video",
    "shots_no_video_stream",
}


def failure(texts: Texts, job: Job) -> Notice:
    loc, key = job.locale, job.error_key or "internal"
    other = model_name(texts, job.spec.model_id.other, loc)
    params = {
        "detail": job.error_detail or "?",
        "code": job.error_code or "?",
        "model": other,
        **job.extra.get("error_params", {}),
    }
    reason_key = f"error.{key}" if texts.has(f"error.{key}") else "error.internal"
    lines = [
        texts("failure.reason", loc, reason=texts(reason_key, loc, **params)),
        texts("failure.hint", loc, hint=texts(_HINTS.get(key, "error.generic_hint"), loc, model=other)),
    ]
    if job.task_id:  # IMA created a task: whatever failed after that, it may have been billed
        lines.append(texts("delivery.may_be_billed", loc, task_id=job.task_id))
    elif key in _NOT_CHARGED:
        lines.append(texts("failure.credits_safe", loc))
    lines += prompt_line(texts, job)
    buttons: tuple[Button, ...] = ()
    if key in _LINKS:
        label, url = _LINKS[key]
        buttons += (Button(texts(label, loc), url=url, style=ButtonStyle.LINK),)
    elif job.task_id:
        buttons += (Button(texts("button.records", loc), url=RECORDS_URL, style=ButtonStyle.LINK),)
    if key not in ("auth", "attachment_not_image", "attachment_too_large"):  # the same input fails again
        buttons += _retry_buttons(texts, job)
    return Notice(
        NoticeKind.FAILURE,
        texts("failure.title", loc),
        tuple(lines),
        buttons=buttons,
        locale=loc,
        job_id=job.id,
        mention_user_id=job.origin.user_id,
    )


def timed_out(texts: Texts, job: Job, *, minutes: int) -> Notice:
    loc = job.locale
    buttons = (
        Button(texts("button.records", loc), url=RECORDS_URL, style=ButtonStyle.LINK),
        *_retry_buttons(texts, job),
    )
    if job.error_key == "status_unknown":
        body = texts(
            "delivery.status_unknown", loc, code=job.extra.get("status_error", {}).get("code") or "?"
        )
    else:
        body = texts("timeout.body", loc)
    return Notice(
        NoticeKind.FAILURE,
        texts("timeout.title", loc, minutes=minutes),
        (body, RECORDS_URL, *prompt_line(texts, job)),
        buttons=buttons,
        locale=loc,
        job_id=job.id,
        mention_user_id=job.origin.user_id,
    )


def uncertain(texts: Texts, job: Job) -> Notice:
    loc = job.locale
    buttons = (
        Button(texts("button.records", loc), url=RECORDS_URL, style=ButtonStyle.LINK),
        Button(texts("button.retry", loc), Action.RETRY, job.id, style=ButtonStyle.PRIMARY),
    )
    return Notice(
        NoticeKind.FAILURE,
        texts("uncertain.title", loc),
        # After a restart the bot knows it stopped; otherwise only the connection dropped.
        (
            texts(
                "uncertain.body" if job.error_key == "create_interrupted" else "delivery.uncertain_dropped",
                loc,
            ),
            RECORDS_URL,
            *prompt_line(texts, job),
        ),
        buttons=buttons,
        locale=loc,
        job_id=job.id,
        mention_user_id=job.origin.user_id,
    )


def cancelled(texts: Texts, job: Job, *, was_running: bool) -> Notice:
    loc = job.locale
    lines = (texts("cancelled.running_note", loc),) if was_running else ()
    return Notice(
        NoticeKind.CANCELLED,
        texts("cancelled.title", loc),
        (*lines, *prompt_line(texts, job)),
        buttons=_retry_buttons(texts, job)[:1],
        locale=loc,
        job_id=job.id,
    )


def final_for(texts: Texts, job: Job, *, max_wait: float) -> Notice:
    """The final message for a job in a finished state (also used to re-deliver after a crash)."""
    elapsed = (job.finished_at - job.started_at) if job.finished_at and job.started_at else 0.0
    if job.state is JobState.SUCCEEDED:
        return success(texts, job, elapsed=elapsed)
    if job.state is JobState.UNCERTAIN:
        return uncertain(texts, job)
    if job.state is JobState.TIMED_OUT:
        return timed_out(texts, job, minutes=int(max_wait // 60))
    if job.state is JobState.CANCELLED:
        return cancelled(texts, job, was_running=bool(job.task_id))
    return failure(texts, job)
