"""Typed errors for job descriptions that cannot be used.

ccn_jobs sits below ccn_core (a node imports it without the service kernel), so these are
plain ValueErrors; a service maps them to its own error root (`BadInput`) where it calls us."""

from __future__ import annotations

import re
from typing import Self

import msgspec

# msgspec ends a validation message with " - at `$.path`" when the error has a location; a
# missing or unknown field is named in the message itself, relative to that location.
_PATH_SUFFIX = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_NAMED_FIELD = re.compile(r"^Object (?:missing required|contains unknown) field `(?P<name>[^`]+)`")


class UnknownJobType(ValueError):
    """No job type of this name is registered."""

    def __init__(self, job_type: str, known: list[str]) -> None:
        super().__init__(f"unknown job type {job_type!r}; known: {', '.join(known) or 'none'}")
        self.job_type = job_type


class InvalidJobData(ValueError):
    """A document does not match its job type's schema.

    `field` is the location msgspec reported without the leading "$." (`"html"`,
    `"items[0].url"`), or None when the document as a whole is wrong (not JSON, not an object)."""

    def __init__(self, job_type: str, message: str, field: str | None) -> None:
        where = f" (field {field!r})" if field else ""
        super().__init__(f"{job_type}: {message}{where}")
        self.job_type = job_type
        self.field = field
        self.reason = message

    @classmethod
    def from_msgspec(cls, job_type: str, error: msgspec.DecodeError) -> Self:
        message = str(error)
        path = ""
        if suffix := _PATH_SUFFIX.search(message):
            message, path = message[: suffix.start()], suffix.group("path")
        if named := _NAMED_FIELD.match(message):
            path = f"{path}.{named.group('name')}" if path else named.group("name")
        return cls(job_type, message, path or None)


class InvalidPayload(InvalidJobData):
    """A job's payload does not match its type: the scheduler refuses to create the job."""


class InvalidResult(InvalidJobData):
    """A node's result does not match its type's result schema: validation rejects it."""


class DocumentRefused(ValueError):
    """A handler cannot read this document: the job fails with this reason, typed by `code`.

    Raised for documents, not payloads: the payload met its schema, but its document is
    encrypted, corrupt, truncated, over a limit, or not what it was declared to be. The node
    sends `str(error)` back as the fail reason, so it starts with the code."""

    CODES = frozenset(
        {
            "empty",  # zero bytes, or no content at all
            "media_type_mismatch",  # the bytes' magic contradicts the declared media type
            "encrypted",  # password-protected
            "corrupt",  # the parser cannot make sense of it
            "truncated",  # it ends before its structure does
            "too_many_pages",  # more pages than the payload's max_pages
            "too_large",  # over a byte bound (an archive member, an expanded size)
            "deadline_exceeded",  # the payload's time_limit_s ran out between pages
            "not_resolved",  # a reference reached the handler without its body
            "body_mismatch",  # a fetched body's size or sha256 is not the reference's
            "body_missing",  # the object store has no body for the reference
        }
    )

    def __init__(self, job_type: str, code: str, detail: str) -> None:
        if code not in self.CODES:
            raise ValueError(f"unknown refusal code {code!r}")
        super().__init__(f"{code}: {job_type}: {detail}")
        self.job_type = job_type
        self.code = code
        self.detail = detail
