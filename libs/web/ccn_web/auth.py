"""Who may call what: the operator's admin token (RBAC comes later)."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from ccn_core.errors import Unauthorized, Unavailable

ADMIN_SECURITY: list[dict[str, list[str]]] = [{"AdminToken": []}]


DEFAULT_ADMIN_NAME = "admin"


def admin_guard(admin_token: str, admin_name: str = DEFAULT_ADMIN_NAME) -> Guard:
    """A guard for operator routes. Guards run before parameters and bodies are parsed, so a
    caller without the token learns nothing, not even which parameters were wrong. The token's
    name (`admin_name`) is who the caller is, for the audit trail, until roles arrive."""
    expected = admin_token.encode()

    def require_admin(connection: ASGIConnection[Any, Any, Any, Any], __: BaseRouteHandler) -> None:
        if not expected:
            # an empty token must never mean "open": refuse until one is configured
            raise Unavailable("admin token not configured")
        scheme, _, presented = connection.headers.get("authorization", "").partition(" ")
        # compare_digest on bytes: constant time for any input, and no error on non-ASCII
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected):
            raise Unauthorized("missing or wrong admin token")
        connection.state.admin_name = admin_name

    return require_admin


def admin_name(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """Who the admin guard let in (its token's name)."""
    name = getattr(connection.state, "admin_name", None)
    if not isinstance(name, str):
        raise Unauthorized("missing or wrong admin token")
    return name
