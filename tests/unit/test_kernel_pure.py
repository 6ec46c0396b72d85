"""Pure pieces of the kernel: ids, tokens, subjects, settings, error mappings, consent."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from ccn_core import ids, subjects
from ccn_core.consent import consent_catalogue, consent_document, current_consent_version
from ccn_core.errors import (
    BadInput,
    Conflict,
    Disposition,
    NotFound,
    RateLimited,
    Unavailable,
    Unprocessable,
    disposition_for,
    error_from_code,
)
from ccn_core.eventstore import StoredEvent, is_aggregate_scope, occ_predecessor, precedes
from ccn_core.migrations import bundled_migrations
from ccn_core.projection import layer_by_key
from ccn_core.settings import Settings, SettingsError, settings_from_env
from ccn_core.tokens import format_api_token, format_session_token, parse_api_token, parse_session_token


def test_uuid7_is_time_ordered_and_versioned() -> None:
    first = ids.uuid7(now_ms=1_000, rand=b"\xff" * 10)
    second = ids.uuid7(now_ms=1_001, rand=b"\x00" * 10)
    assert first.version == 7 and second.version == 7
    assert first.variant == uuid.RFC_4122
    assert str(first) < str(second)


def test_derived_event_ids_are_stable_and_distinct() -> None:
    assert ids.derived_event_id("node", "n1", "k", "0") == ids.derived_event_id("node", "n1", "k", "0")
    assert ids.derived_event_id("node", "n1", "k", "0") != ids.derived_event_id("node", "n1", "k", "1")


def test_keyed_secrets_need_the_key() -> None:
    assert ids.keyed_secret("key-a", "api", "k1") == ids.keyed_secret("key-a", "api", "k1")
    assert ids.keyed_secret("key-a", "api", "k1") != ids.keyed_secret("key-b", "api", "k1")
    assert ids.keyed_uuid4("key-a", "node", "k1").version == 4


def test_ip_hash_is_salted_and_never_the_ip() -> None:
    hashed = ids.ip_hash("203.0.113.9", "salt-1")
    assert "203.0.113.9" not in hashed
    assert hashed != ids.ip_hash("203.0.113.9", "salt-2")
    assert hashed != hashlib.sha256(b"203.0.113.9").hexdigest()


def test_tokens_round_trip_and_reject_garbage() -> None:
    node, session, secret = ids.new_public_id(), ids.new_public_id(), ids.new_secret()
    api = parse_api_token(format_api_token(node, secret))
    assert (api.node_id, api.secret) == (node, secret)
    parsed = parse_session_token(format_session_token(node, session, secret))
    assert (parsed.node_id, parsed.session_id, parsed.secret) == (node, session, secret)
    for garbage in ["", "Bearer x", "cca_" + "z" * 80, format_session_token(node, session, secret)]:
        with pytest.raises(Exception, match="not a valid node API token"):
            parse_api_token(garbage)


def test_subjects_refuse_tokens_that_would_reroute() -> None:
    assert subjects.node_event("n-1", "registered") == "ccn.node.n-1.registered"
    assert subjects.aggregate_filter("job", "j1") == "ccn.job.j1.*"
    for bad in ["a.b", "*", ">", "a b", ""]:
        with pytest.raises(ValueError, match="not a valid subject token"):
            subjects.node_event(bad, "registered")
    assert subjects.split_event("ccn.node.n1.opted_out") == ("node", "n1", "opted_out")


@pytest.mark.parametrize(
    ("subject", "pattern", "matches"),
    [
        ("ccn.job.a1.created", "ccn.job.a1.*", True),
        ("ccn.job.a1.created", "ccn.job.a2.*", False),
        ("ccn.job.a1.created", "ccn.job.*", False),
        ("ccn.job.a1.created", "ccn.job.>", True),
        ("ccn.job", "ccn.job.>", False),
        ("ccn.job.a1", "ccn.job.a1.*", False),
        ("ccn.job.a1.created", "ccn.job.a1.created", True),
        ("ccn.job.a1.created.x", "ccn.job.a1.*", False),
    ],
)
def test_subject_matching_follows_nats_wildcards(subject: str, pattern: str, matches: bool) -> None:
    assert subjects.subject_matches(subject, pattern) is matches


def test_settings_from_env_parses_and_validates() -> None:
    settings = settings_from_env({"CCN_NATS_URL": "nats://x:1", "CCN_EDGE_PORT": "9000", "CCN_HOME": "/tmp/h"})
    assert settings.nats_url == "nats://x:1" and not settings.embedded_nats
    assert settings.edge_port == 9000 and settings.home == Path("/tmp/h")
    assert settings.effective_database_url.endswith(":5433/ccn")
    with pytest.raises(SettingsError, match="CCN_EDGE_PORT='eighty' is not a valid int"):
        settings_from_env({"CCN_EDGE_PORT": "eighty"})
    with pytest.raises(SettingsError, match="CCN_STREAM_REPLICAS"):
        settings_from_env({"CCN_STREAM_REPLICAS": "2"})
    assert Settings().replica("edge").startswith("edge-")


def test_each_error_maps_once() -> None:
    assert BadInput("x").http_status == 400
    assert Unprocessable("x").http_status == 422
    assert error_from_code("conflict", "m").http_status == 409
    assert error_from_code("no-such-code", "m").http_status == 500
    assert disposition_for(Unavailable("x")) is Disposition.RETRY
    assert disposition_for(RateLimited("x", retry_after=1)) is Disposition.RETRY
    assert disposition_for(BadInput("x")) is Disposition.TERMINATE
    assert disposition_for(Conflict("x")) is Disposition.ACK
    assert disposition_for(NotFound("x")) is Disposition.ACK
    assert disposition_for(RuntimeError("x")) is Disposition.RETRY


def test_consent_catalogue_hashes_the_shipped_documents() -> None:
    version = current_consent_version()
    assert hashlib.sha256(consent_document(version).encode()).hexdigest() == consent_catalogue()[version]


def test_migrations_are_numbered_without_gaps_and_comment_every_table() -> None:
    migrations = bundled_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    for migration in migrations:
        sql = migration.sql.lower()
        for table in [line.split()[2] for line in sql.splitlines() if line.startswith("create table")]:
            assert f"comment on table {table} is" in sql, f"{migration.name}: table {table} has no comment"


def test_layering_keeps_each_keys_order_and_groups_the_rest_by_sql() -> None:
    keyed = [
        ("a", ("INSERT", ("a", 1))),
        ("a", ("UPDATE", ("a", 2))),
        ("b", ("INSERT", ("b", 1))),
        ("a", ("UPDATE", ("a", 3))),
        ("b", ("UPDATE", ("b", 2))),
        ("c", ("UPDATE", ("c", 1))),
    ]
    layers = layer_by_key(keyed)
    assert layers == [
        [("INSERT", ("a", 1)), ("INSERT", ("b", 1)), ("UPDATE", ("c", 1))],
        [("UPDATE", ("a", 2)), ("UPDATE", ("b", 2))],
        [("UPDATE", ("a", 3))],
    ]
    flattened = [statement for layer in layers for statement in layer]
    for key in "abc":
        assert [args for _, args in flattened if args[0] == key] == [statement[1] for k, statement in keyed if k == key]


def _stored(seq: int, subject: str, **headers: str) -> StoredEvent:
    return StoredEvent(seq=seq, subject=subject, data=b"{}", headers=headers)


def test_an_events_predecessor_is_what_its_occ_check_proved() -> None:
    scope = "ccn.job.a1.*"
    expected = {"Nats-Expected-Last-Subject-Sequence": "7", "Nats-Expected-Last-Subject-Sequence-Subject": scope}
    assert occ_predecessor(_stored(9, "ccn.job.a1.claimed", **expected), scope) == 7
    # checked against another scope, or not checked at all: nothing is proved
    assert occ_predecessor(_stored(9, "ccn.job.a1.claimed", **expected), "ccn.job.a2.*") is None
    assert occ_predecessor(_stored(9, "ccn.job.a1.claimed"), scope) is None
    # a later member of an atomic batch follows the member before it
    second = _stored(12, "ccn.job.a1.completed", **{"Nats-Batch-Id": "b", "Nats-Batch-Sequence": "2"})
    assert occ_predecessor(second, scope) == 11
    first = _stored(11, "ccn.job.a1.submitted", **{"Nats-Batch-Id": "b", "Nats-Batch-Sequence": "1"}, **expected)
    assert occ_predecessor(first, scope) == 7
    assert precedes(first, second, scope)
    assert not precedes(
        _stored(11, "ccn.job.a1.submitted", **{"Nats-Batch-Id": "other", "Nats-Batch-Sequence": "1"}), second, scope
    )
    assert not precedes(
        _stored(11, "ccn.job.a2.submitted", **{"Nats-Batch-Id": "b", "Nats-Batch-Sequence": "1"}), second, scope
    )
    assert precedes(_stored(7, "ccn.job.a1.created"), first, scope)
    assert not precedes(_stored(7, "ccn.job.zz.created"), first, scope)


def test_only_one_aggregates_scope_is_read_along_an_occ_chain() -> None:
    assert is_aggregate_scope("ccn.job.a1.*")
    # many aggregates' events (a reader of a whole stream) have no single chain: scanned
    assert not is_aggregate_scope("ccn.job.*.*")
    assert not is_aggregate_scope("ccn.job.>")
    assert not is_aggregate_scope("ccn.job.a1.created")
    assert not is_aggregate_scope("*")
