"""Fetch records (CCN_FETCH, `ccn.fetch.<domain id>.<event>`) as events to append: what the fetch
proxy records for every request, and what the crawler records of a crawl's extraction yield. A
record is filed under its domain's policy id, or UNKNOWN_DOMAIN_ID when the URL had no host that
can name a subject."""

from __future__ import annotations

import re
from datetime import datetime

import msgspec

from ccn_core import subjects
from ccn_core.aggregate import envelope_headers, event_name
from ccn_core.domain.domain_policy import policy_id
from ccn_core.eventstore import OutgoingEvent
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.fetch import FetchEvent

AGGREGATE = "fetch"
UNKNOWN_DOMAIN_ID = "_unknown"
_SUBJECT_TOKEN = re.compile(r"[a-z0-9-][a-z0-9_U-]{0,127}")


def domain_record_id(domain: str) -> str:
    """A canonical domain's policy id, when it can name a subject; UNKNOWN_DOMAIN_ID otherwise."""
    candidate = policy_id(domain)
    if not _SUBJECT_TOKEN.fullmatch(candidate):
        return UNKNOWN_DOMAIN_ID
    return candidate


def record_event(
    domain_id: str,
    event: FetchEvent,
    *,
    event_id: str,
    now: datetime,
    correlation_id: str,
    causation_id: str | None,
    actor: Actor,
) -> OutgoingEvent:
    envelope = Envelope(
        event_id=event_id,
        type=type(event).__struct_config__.tag,  # type: ignore[arg-type]  # every fetch event has a string tag
        schema_version=1,
        aggregate_id=domain_id,
        occurred_at=now,
        correlation_id=correlation_id,
        causation_id=causation_id,
        actor=actor,
        data=event,
    )
    return OutgoingEvent(
        subject=subjects.event(AGGREGATE, domain_id, event_name(event)),
        data=msgspec.json.encode(envelope),
        headers=envelope_headers(envelope),
    )
