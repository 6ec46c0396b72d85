"""One error root, mapped once to HTTP statuses, command replies and consumer dispositions."""

from __future__ import annotations

from enum import Enum


class CcnError(Exception):
    code = "internal"
    http_status = 500

    def __init__(self, message: str, *, field: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.retry_after = retry_after


class BadInput(CcnError):
    code = "bad_input"
    http_status = 400


class Unprocessable(CcnError):
    """Well-formed, but refers to something the system does not accept (an unknown consent version)."""

    code = "unprocessable"
    http_status = 422


class Unauthorized(CcnError):
    code = "unauthorized"
    http_status = 401


class Forbidden(CcnError):
    code = "forbidden"
    http_status = 403


class NotFound(CcnError):
    code = "not_found"
    http_status = 404


class Conflict(CcnError):
    code = "conflict"
    http_status = 409


class UpgradeRequired(CcnError):
    """The client speaks a protocol version, or is a release, this server no longer supports."""

    code = "upgrade_required"
    http_status = 426


class PayloadTooLarge(CcnError):
    code = "payload_too_large"
    http_status = 413


class RequestTimeout(CcnError):
    """The client did not send its request (its body) within the time the server gives it."""

    code = "request_timeout"
    http_status = 408


class RateLimited(CcnError):
    code = "rate_limited"
    http_status = 429


class Unavailable(CcnError):
    """A dependency (NATS, Postgres, a service) did not answer; the caller may retry."""

    code = "unavailable"
    http_status = 503


ERRORS_BY_CODE: dict[str, type[CcnError]] = {
    cls.code: cls
    for cls in (
        CcnError,
        BadInput,
        Unprocessable,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        UpgradeRequired,
        PayloadTooLarge,
        RequestTimeout,
        RateLimited,
        Unavailable,
    )
}


def error_from_code(code: str, message: str, *, field: str | None = None, retry_after: float | None = None) -> CcnError:
    return ERRORS_BY_CODE.get(code, CcnError)(message, field=field, retry_after=retry_after)


class Disposition(Enum):
    """What a consumer does with a message whose handling raised."""

    ACK = "ack"  # the message can never succeed; drop it, the error is logged
    RETRY = "retry"  # a passing fault; redeliver after a delay
    TERMINATE = "terminate"  # poison: stop redelivering


def disposition_for(error: BaseException) -> Disposition:
    match error:
        case Unavailable() | RateLimited():
            return Disposition.RETRY
        case BadInput() | Unprocessable() | Unauthorized() | Forbidden():
            return Disposition.TERMINATE
        case NotFound() | Conflict():
            # a reactor's command that is already applied or moot is done, not failed
            return Disposition.ACK
        case _:
            return Disposition.RETRY
