"""The ImaError tree: every failure the `ima` package raises.

    ImaError                       .key (for user text), .code, .message, .hint, .links
    ├── ImaUsageError              bad input caught before any request (model not allowed, images missing, …)
    │   ├── ModelNotAllowed        the name is not one of the two allowed models (or their aliases)
    │   └── ModelNotFound          the product list has no leaf for the model
    ├── ImaTransportError          no usable answer: connection error, timeout, non-JSON body, 5xx without code
    │   └── CreateOutcomeUnknown   create was sent but its answer was lost; it may have been created and billed
    ├── ImaApiError                the body carried a business `code` not in {0, 200}
    │   ├── AuthError              401: key invalid
    │   ├── InsufficientCredits    4008
    │   ├── SubscriptionRequired   4014
    │   ├── CreditMismatch         6006
    │   ├── NoMatchingRule         6009
    │   ├── AttributeMismatch      6010
    │   └── ServerError            500 (or a mirrored HTTP 5xx carrying a body code)
    ├── UploadError                the upload token or presigned PUT failed
    ├── TaskFailed                 the task ended failed (resource_status 2, status "failed") or deleted (3)
    └── TaskTimeout                polling passed the wait cap; the creation-records page may still show it

Transport versus business failure is decided in exactly one place: `ima._transport.decode_envelope`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .models import API_KEY_URL, RECORDS_URL, SUBSCRIPTION_URL


class ImaError(Exception):
    key: ClassVar[str] = "ima_error"
    default_hint: ClassVar[str] = ""
    default_links: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        message: str,
        *,
        code: int | str | None = None,
        hint: str | None = None,
        links: tuple[str, ...] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint if hint is not None else self.default_hint
        self.links = links if links is not None else self.default_links
        self.details = details

    def to_json(self) -> dict[str, Any]:
        """The `{"code", "message", "hint"}` object the `ima` command prints on failure; `code` is
        always a string (`"6009"`, `"timeout"`, `"usage"`), so a reader needs one type."""
        return {
            "code": str(self.code if self.code is not None else self.key),
            "message": self.message,
            "hint": self.hint,
        }


class ImaUsageError(ImaError):
    key = "usage"


class ModelNotAllowed(ImaUsageError):
    key = "model_not_allowed"


class ModelNotFound(ImaUsageError):
    key = "model_not_found"


class ImaTransportError(ImaError):
    key = "transport"
    default_hint = "The IMA service could not be reached. Try again in a minute."


class CreateOutcomeUnknown(ImaTransportError):
    key = "create_unknown"
    default_hint = (
        "The create request was sent but no answer came back. It may have been created: check your "
        f"creation records at {RECORDS_URL} before retrying, so you are not charged twice."
    )
    default_links = (RECORDS_URL,)


class ImaApiError(ImaError):
    key = "api"

    def __init__(self, message: str, *, code: int | str | None = None, http_status: int = 200, **kw: Any):
        super().__init__(message, code=code, **kw)
        self.http_status = http_status


class AuthError(ImaApiError):
    key = "auth"
    default_hint = f"The API key is invalid or expired. Create a new key at {API_KEY_URL}"
    default_links = (API_KEY_URL,)


class InsufficientCredits(ImaApiError):
    key = "insufficient_credits"
    default_hint = (
        f"Not enough credits. Top up at {SUBSCRIPTION_URL}, or choose a cheaper duration/resolution."
    )
    default_links = (SUBSCRIPTION_URL,)


class SubscriptionRequired(ImaApiError):
    key = "subscription_required"
    default_hint = (
        f"This model needs a subscription. Upgrade at {SUBSCRIPTION_URL}, or use Ima Sevio 1.0-Fast."
    )
    default_links = (SUBSCRIPTION_URL,)


class CreditMismatch(ImaApiError):
    key = "credit_mismatch"
    default_hint = "The price changed while the request was prepared. Try again."


class NoMatchingRule(ImaApiError):
    key = "no_matching_rule"
    default_hint = "These parameters have no price rule. Try another duration or resolution."


class AttributeMismatch(ImaApiError):
    key = "attribute_mismatch"
    default_hint = "The parameters do not match the model's price rule. Try another duration or resolution."


class ServerError(ImaApiError):
    key = "server_error"
    default_hint = "IMA could not handle the request. Try again, or a lower resolution or shorter duration."


class UploadError(ImaError):
    key = "upload"
    default_hint = "The image could not be uploaded. Try again, or send a smaller JPEG/PNG."


class TaskFailed(ImaError):
    key = "task_failed"
    default_hint = "The generation failed. Try again, rephrase the prompt, or switch model."

    def __init__(self, message: str, *, task_id: str, deleted: bool = False, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.task_id = task_id
        self.deleted = deleted


class TaskTimeout(ImaError):
    key = "task_timeout"
    default_hint = f"No result after the wait limit. Check your creation records at {RECORDS_URL}"
    default_links = (RECORDS_URL,)

    def __init__(self, message: str, *, task_id: str, **kw: Any) -> None:
        super().__init__(message, code="timeout", **kw)
        self.task_id = task_id


API_ERRORS_BY_CODE: dict[int, type[ImaApiError]] = {
    401: AuthError,
    4008: InsufficientCredits,
    4014: SubscriptionRequired,
    6006: CreditMismatch,
    6009: NoMatchingRule,
    6010: AttributeMismatch,
    500: ServerError,
}


def api_error_for(code: int | str, message: str, *, http_status: int = 200) -> ImaApiError:
    """The typed error for a business code (an unknown code gives a plain ImaApiError)."""
    try:
        cls = API_ERRORS_BY_CODE.get(int(code), ImaApiError)
    except (TypeError, ValueError):
        cls = ImaApiError
    return cls(message or f"IMA error {code}", code=code, http_status=http_status)
