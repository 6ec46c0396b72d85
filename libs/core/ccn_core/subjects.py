"""Every subject string is built here; no handler invents one.

Events: ccn.<aggregate>.<id>.<event>. Commands: ccn.cmd.<service>.<command>.
"""

from __future__ import annotations

import re

PREFIX = "ccn"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def _token(value: str, what: str) -> str:
    # ids reach subjects from untrusted input; a dot, space or wildcard would change the routing
    if not _TOKEN.match(value):
        raise ValueError(f"{what} {value!r} is not a valid subject token")
    return value


def event(aggregate: str, aggregate_id: str, name: str) -> str:
    return f"{PREFIX}.{_token(aggregate, 'aggregate')}.{_token(aggregate_id, 'id')}.{_token(name, 'event')}"


def aggregate_filter(aggregate: str, aggregate_id: str) -> str:
    """The filter that selects one aggregate's whole history (and its OCC scope)."""
    return f"{PREFIX}.{_token(aggregate, 'aggregate')}.{_token(aggregate_id, 'id')}.*"


def aggregate_events(aggregate: str) -> str:
    return f"{PREFIX}.{_token(aggregate, 'aggregate')}.*.*"


def node_event(node_id: str, name: str) -> str:
    return event("node", node_id, name)


def telemetry(node_id: str, kind: str) -> str:
    return event("telemetry", node_id, kind)


def command(service: str, name: str) -> str:
    return f"{PREFIX}.cmd.{_token(service, 'service')}.{_token(name, 'command')}"


def command_wildcard(service: str) -> str:
    return f"{PREFIX}.cmd.{_token(service, 'service')}.*"


def claims_withdrawn() -> str:
    """Core NATS, no queue group: every scheduler replica hears which waiting claims to drop."""
    return f"{PREFIX}.scheduler.claims_withdrawn"


def subject_matches(subject: str, pattern: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` is one or more."""
    tokens = subject.split(".")
    wanted = pattern.split(".")
    for index, want in enumerate(wanted):
        if want == ">":
            return len(tokens) > index
        if index >= len(tokens) or (want != "*" and want != tokens[index]):
            return False
    return len(tokens) == len(wanted)


def split_event(subject: str) -> tuple[str, str, str]:
    """(aggregate, id, event) of an event subject."""
    prefix, aggregate, aggregate_id, name = subject.split(".", 3)
    if prefix != PREFIX:
        raise ValueError(f"{subject!r} is not a ccn event subject")
    return aggregate, aggregate_id, name
