"""The node aggregate's rules as a table: (given events, command) → expected events or error."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ccn_core.decider import fold
from ccn_core.domain.node import (
    MAX_ACTIVE_SESSIONS,
    EndSession,
    NodeDecider,
    OptOut,
    RecordConsent,
    Register,
    StartSession,
    authenticate_session,
)
from ccn_core.errors import CcnError, Conflict, Forbidden, Unauthorized, Unprocessable
from ccn_core.ids import token_hash
from ccn_proto.nodes import (
    CONSENT_SCOPES,
    ConsentRecorded,
    NodeEvent,
    NodeOptedOut,
    NodeRegistered,
    SessionEnded,
    SessionStarted,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
NODE = "6f1c2b9e-0000-4000-8000-000000000001"
API_SECRET = "api-secret-" + "a" * 32
SESSION_SECRET = "session-secret-" + "b" * 32
V1, V1_HASH = "2026-11-01", "1" * 64
V2, V2_HASH = "2027-01-01", "2" * 64
decider = NodeDecider({V1: V1_HASH, V2: V2_HASH})


def registered(key_hash: str | None = None, fingerprint: str | None = None) -> NodeRegistered:
    return NodeRegistered(
        node_id=NODE,
        api_token_hash=token_hash(API_SECRET),
        session_id="s1",
        session_token_hash=token_hash(SESSION_SECRET),
        consent_flag=True,
        user_agent="ccn-node/0.1",
        idempotency_key_hash=key_hash,
        request_fingerprint=fingerprint,
    )


REGISTERED = registered("key-hash", "fp-1")
CONSENTED = ConsentRecorded(consent_version=V1, consent_hash=V1_HASH, scopes=list(CONSENT_SCOPES))
# recorded before consent was per scope: it stands for every scope
CONSENTED_TO_ALL_BEFORE_SCOPES = ConsentRecorded(consent_version=V1, consent_hash=V1_HASH)
OPTED_OUT = NodeOptedOut(ended_session_ids=["s1"])
S2 = SessionStarted(session_id="s2", session_token_hash=token_hash("s2-secret"))

CASES: list[tuple[str, list[NodeEvent], object, list[NodeEvent] | type[CcnError]]] = [
    ("register a new node", [], Register(registered=REGISTERED), [REGISTERED]),
    (
        "a retry under the same key and body is answered, not repeated",
        [REGISTERED],
        Register(registered=REGISTERED),
        [],
    ),
    (
        "the same key with another body is a conflict",
        [REGISTERED],
        Register(registered=registered("key-hash", "fp-2")),
        Conflict,
    ),
    (
        "a registration without key over an existing node is a conflict",
        [REGISTERED],
        Register(registered=registered()),
        Conflict,
    ),
    (
        "a retried registration of an opted-out node is forbidden",
        [REGISTERED, OPTED_OUT],
        Register(registered=REGISTERED),
        Forbidden,
    ),
    (
        "consent to a known version",
        [REGISTERED],
        RecordConsent(api_secret=API_SECRET, consent_version=V1, consent_hash=V1_HASH),
        [CONSENTED],
    ),
    (
        "updated consent names the version it replaces",
        [REGISTERED, CONSENTED],
        RecordConsent(api_secret=API_SECRET, consent_version=V2, consent_hash=V2_HASH),
        [ConsentRecorded(consent_version=V2, consent_hash=V2_HASH, previous_version=V1, scopes=list(CONSENT_SCOPES))],
    ),
    (
        "consent recorded before scopes stands for every scope",
        [REGISTERED, CONSENTED_TO_ALL_BEFORE_SCOPES],
        RecordConsent(api_secret=API_SECRET, consent_version=V1, consent_hash=V1_HASH),
        [],
    ),
    (
        "narrowing the scopes under the same version is recorded",
        [REGISTERED, CONSENTED],
        RecordConsent(api_secret=API_SECRET, consent_version=V1, consent_hash=V1_HASH, scopes=("nlp", "documents")),
        [ConsentRecorded(consent_version=V1, consent_hash=V1_HASH, previous_version=V1, scopes=["documents", "nlp"])],
    ),
    (
        "the same consent again changes nothing",
        [REGISTERED, CONSENTED],
        RecordConsent(api_secret=API_SECRET, consent_version=V1, consent_hash=V1_HASH),
        [],
    ),
    (
        "an unknown consent version is unprocessable",
        [REGISTERED],
        RecordConsent(api_secret=API_SECRET, consent_version="1999-01-01", consent_hash=V1_HASH),
        Unprocessable,
    ),
    (
        "a hash that is not the version's is unprocessable",
        [REGISTERED],
        RecordConsent(api_secret=API_SECRET, consent_version=V1, consent_hash=V2_HASH),
        Unprocessable,
    ),
    (
        "consent with a wrong token is unauthorized",
        [REGISTERED],
        RecordConsent(api_secret="wrong" * 8, consent_version=V1, consent_hash=V1_HASH),
        Unauthorized,
    ),
    (
        "consent for a node that does not exist is unauthorized",
        [],
        RecordConsent(api_secret=API_SECRET, consent_version=V1, consent_hash=V1_HASH),
        Unauthorized,
    ),
    (
        "consent after opt-out is forbidden",
        [REGISTERED, OPTED_OUT],
        RecordConsent(api_secret=API_SECRET, consent_version=V1, consent_hash=V1_HASH),
        Forbidden,
    ),
    (
        "opt-out ends every active session",
        [REGISTERED, S2],
        OptOut(api_secret=API_SECRET, reason="moving on"),
        [NodeOptedOut(ended_session_ids=["s1", "s2"], reason="moving on")],
    ),
    (
        "opt-out twice is forbidden: the token is revoked",
        [REGISTERED, OPTED_OUT],
        OptOut(api_secret=API_SECRET),
        Forbidden,
    ),
    ("opt-out with a wrong token is unauthorized", [REGISTERED], OptOut(api_secret="x" * 40), Unauthorized),
    (
        "start a session",
        [REGISTERED],
        StartSession(api_secret=API_SECRET, session_id="s2", session_token_hash=S2.session_token_hash),
        [S2],
    ),
    (
        "starting the same session again changes nothing",
        [REGISTERED, S2],
        StartSession(api_secret=API_SECRET, session_id="s2", session_token_hash=S2.session_token_hash),
        [],
    ),
    (
        "no session after opt-out",
        [REGISTERED, OPTED_OUT],
        StartSession(api_secret=API_SECRET, session_id="s3", session_token_hash="h"),
        Forbidden,
    ),
    (
        "end a session with its token",
        [REGISTERED],
        EndSession(session_id="s1", session_secret=SESSION_SECRET, reason="bye"),
        [SessionEnded(session_id="s1", reason="bye")],
    ),
    (
        "ending a session with another's token is unauthorized",
        [REGISTERED, S2],
        EndSession(session_id="s2", session_secret=SESSION_SECRET),
        Unauthorized,
    ),
    (
        "an ended session cannot be ended again",
        [REGISTERED, SessionEnded(session_id="s1")],
        EndSession(session_id="s1", session_secret=SESSION_SECRET),
        Unauthorized,
    ),
]


@pytest.mark.parametrize(("given", "command", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_node_rules(given: list[NodeEvent], command: object, expected: list[NodeEvent] | type[CcnError]) -> None:
    state = fold(decider, NODE, given)
    if isinstance(expected, list):
        assert decider.decide(command, state, NOW) == expected  # type: ignore[arg-type]
    else:
        with pytest.raises(expected):
            decider.decide(command, state, NOW)  # type: ignore[arg-type]


def test_the_oldest_session_gives_way_when_the_limit_is_reached() -> None:
    started = [
        SessionStarted(session_id=f"x{i}", session_token_hash=token_hash(f"x{i}"))
        for i in range(MAX_ACTIVE_SESSIONS - 1)
    ]
    state = fold(decider, NODE, [REGISTERED, *started])
    assert len(state.sessions) == MAX_ACTIVE_SESSIONS
    events = decider.decide(StartSession(api_secret=API_SECRET, session_id="new", session_token_hash="h"), state, NOW)
    assert events == [
        SessionEnded(session_id="s1", reason="superseded by a newer session"),
        SessionStarted(session_id="new", session_token_hash="h"),
    ]
    after = fold(decider, NODE, [REGISTERED, *started, *events])
    assert "s1" not in after.sessions and "new" in after.sessions
    assert len(after.sessions) == MAX_ACTIVE_SESSIONS


def test_session_authentication_follows_the_history() -> None:
    state = fold(decider, NODE, [REGISTERED])
    authenticate_session(state, "s1", SESSION_SECRET)
    with pytest.raises(Unauthorized):
        authenticate_session(state, "s1", "not-the-secret")
    with pytest.raises(Unauthorized):
        authenticate_session(fold(decider, NODE, [REGISTERED, SessionEnded(session_id="s1")]), "s1", SESSION_SECRET)
    with pytest.raises(Forbidden):
        authenticate_session(fold(decider, NODE, [REGISTERED, OPTED_OUT]), "s1", SESSION_SECRET)


def test_state_after_opt_out_is_inactive_with_no_sessions() -> None:
    state = fold(decider, NODE, [REGISTERED, S2, CONSENTED, OPTED_OUT])
    assert state.status == "opted_out"
    assert state.sessions == {}
    assert state.consent_version == V1
