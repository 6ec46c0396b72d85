"""What every command reply that failed looks like, whichever service sent it."""

from __future__ import annotations

import msgspec


class CommandError(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """`code` is one of ccn_core.errors' codes; the edge maps it to an HTTP status."""

    code: str
    message: str
    field: str | None = None
    retry_after: float | None = None
