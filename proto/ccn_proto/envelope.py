"""The event envelope: every event on every stream is one of these, with a typed `data`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar, get_args

import msgspec

T = TypeVar("T")

ActorKind = Literal["node", "admin", "service"]


class Actor(msgspec.Struct, gc=False, frozen=True):
    kind: ActorKind
    id: str


class Envelope(msgspec.Struct, Generic[T], gc=False, frozen=True, kw_only=True):
    event_id: str
    type: str
    schema_version: int
    aggregate_id: str
    occurred_at: datetime
    correlation_id: str
    causation_id: str | None
    actor: Actor
    data: T


# NATS header names that carry envelope metadata, so routers and tools need not decode bodies.
HEADER_TYPE = "ccn-type"
HEADER_CORRELATION_ID = "ccn-correlation-id"
HEADER_CAUSATION_ID = "ccn-causation-id"
HEADER_TRACEPARENT = "traceparent"
HEADER_STATUS = "ccn-status"


def event_tags(event_types: Any) -> frozenset[str]:
    """The envelope types (struct tags) of an event Struct, a union of them or a tuple of them:
    what a reader of a whole stream keeps, matched against each message's HEADER_TYPE before
    decoding it."""
    members = event_types if isinstance(event_types, tuple) else get_args(event_types) or (event_types,)
    return frozenset(str(member.__struct_config__.tag) for member in members)
