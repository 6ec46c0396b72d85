"""Bearer token formats. A token names what it belongs to, so the registry finds the node's
aggregate (the source of truth) straight from it, with no lookup table that could lag behind:

    api token      cca_<node hex32><secret>
    session token  ccs_<node hex32><session hex32><secret>

Only SHA-256 hashes of the secret part are stored (in the node's events)."""

from __future__ import annotations

import re
import uuid

import msgspec

from ccn_core.errors import Unauthorized

_API = re.compile(r"^cca_([0-9a-f]{32})([A-Za-z0-9_-]{32,128})$")
_SESSION = re.compile(r"^ccs_([0-9a-f]{32})([0-9a-f]{32})([A-Za-z0-9_-]{32,128})$")


class ApiToken(msgspec.Struct, frozen=True):
    node_id: str
    secret: str


class SessionToken(msgspec.Struct, frozen=True):
    node_id: str
    session_id: str
    secret: str


def format_api_token(node_id: str, secret: str) -> str:
    return f"cca_{uuid.UUID(node_id).hex}{secret}"


def format_session_token(node_id: str, session_id: str, secret: str) -> str:
    return f"ccs_{uuid.UUID(node_id).hex}{uuid.UUID(session_id).hex}{secret}"


def parse_api_token(token: str) -> ApiToken:
    match = _API.match(token)
    if match is None:
        raise Unauthorized("not a valid node API token")
    return ApiToken(node_id=str(uuid.UUID(match[1])), secret=match[2])


def parse_session_token(token: str) -> SessionToken:
    match = _SESSION.match(token)
    if match is None:
        raise Unauthorized("not a valid session token")
    return SessionToken(node_id=str(uuid.UUID(match[1])), session_id=str(uuid.UUID(match[2])), secret=match[3])
