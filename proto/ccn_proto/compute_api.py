"""Bodies of the public HTTP API nodes call at the edge (/compute/*). Closed schemas: an
unknown field is an error, so a typo in a client is caught instead of silently ignored."""

from __future__ import annotations

import msgspec

from ccn_proto.constraints import Sha256Hex, ShortText, Text, UserAgent, Version


class RegisterNodeRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    consent_flag: bool = False
    user_agent: UserAgent | None = None
    user_id: ShortText | None = None
    node_version: ShortText | None = None


class ConsentRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    consent_version: Version
    consent_hash: Sha256Hex


class OptOutRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Text | None = None


class TelemetryRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A heartbeat; metric samples join it with the governance work."""


class StartSessionRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    user_agent: UserAgent | None = None


class EndSessionRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Text | None = None
