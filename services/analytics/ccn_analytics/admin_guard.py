"""The guard on everything under /admin: a bearer token compared in constant time."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from ccn_core.errors import Unauthorized, Unavailable


def admin_guard(admin_token: str) -> Guard:
    """A guard for everything under /admin. Guards run before parameters are parsed, so a caller
    without the token learns nothing, not even which parameters were wrong."""
    expected = admin_token.encode()

    def require_admin(connection: ASGIConnection[Any, Any, Any, Any], __: BaseRouteHandler) -> None:
        if not expected:
            # an empty token must never mean "open": refuse until one is configured
            raise Unavailable("admin token not configured")
        scheme, _, presented = connection.headers.get("authorization", "").partition(" ")
        # compare_digest on bytes: constant time for any input, and no error on non-ASCII
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected):
            raise Unauthorized("missing or wrong admin token")

    return require_admin
