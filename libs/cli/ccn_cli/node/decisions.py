"""What a node does with each frame the edge sends: pure functions of the frame and a view of
the node, so every rule is a row in a unit test. The client carries the decisions out."""

from __future__ import annotations

from collections import deque
from enum import Enum

import msgspec

from ccn_proto.node_protocol import Error, JobOffer

MAX_REASON_CHARS = 1000  # JobFail.reason's bound in the protocol
SHUTTING_DOWN = "node shutting down"

# Before Welcome: codes worth another try later, and codes that a fresh session token may cure.
TRANSIENT_CODES = frozenset({"unavailable", "rate_limited", "internal", "conflict", "timeout"})
AUTH_CODES = frozenset({"unauthorized", "forbidden"})
# After Welcome, a job's result or failure refused with these and a retry_after was not judged:
# the edge could not pass it on now (a service behind it is down, or the node is too fast).
RESENDABLE_CODES = frozenset({"unavailable", "rate_limited"})


class NodeView(msgspec.Struct, frozen=True, kw_only=True):
    """What the decisions need to know about the node at the moment a frame arrives."""

    job_types: frozenset[str]
    running: frozenset[str]
    free_slots: int
    draining: bool


class Run(msgspec.Struct, frozen=True):
    """Start the offered job."""


class Refuse(msgspec.Struct, frozen=True):
    """Hand the offer back at once with JobFail(reason)."""

    reason: str


class AlreadyRunning(msgspec.Struct, frozen=True):
    """The edge repeated an offer this node is working on: keep working, send nothing."""


OfferDecision = Run | Refuse | AlreadyRunning


def decide_offer(view: NodeView, offer: JobOffer) -> OfferDecision:
    if offer.job_id in view.running:
        return AlreadyRunning()
    if view.draining:
        return Refuse(SHUTTING_DOWN)
    if offer.job_type not in view.job_types:
        return Refuse(f"job type {offer.job_type!r} is not one this node runs ({', '.join(sorted(view.job_types))})")
    if view.free_slots <= 0:
        return Refuse("node has no free slot")
    return Run()


def oversized_offer_reason(size: int, limit: int) -> str:
    return f"offer of {size} bytes is over this node's limit of {limit} bytes"


class ErrorAction(Enum):
    STOP_JOB = "stop_job"  # the edge is done with this job: stop it, report nothing more on it
    RESEND_LATER = (
        "resend_later"  # what the node sent about this job was not taken yet: send it again after retry_after
    )
    PAUSE = "pause"  # ask for no work until retry_after has passed
    REFRESH_SESSION = "refresh_session"  # the session token was refused: get a new one, reconnect
    RETRY_LATER = "retry_later"  # the handshake failed for now: reconnect after a backoff
    FATAL = "fatal"  # the edge will not take this node as it is: stop, say why
    NOTE = "note"  # a complaint about something already sent: log it, carry on


def decide_error(error: Error, *, welcomed: bool) -> ErrorAction:
    """Before Welcome an Error ends the handshake; after it, it is about one job or the pace."""
    if welcomed:
        if error.job_id is not None:
            # a finished job's result is kept through an outage: dropping it would cost the work
            # again after the lease ends, and an attempt of the job's retry budget
            if error.retry_after is not None and error.code in RESENDABLE_CODES:
                return ErrorAction.RESEND_LATER
            return ErrorAction.STOP_JOB
        if error.retry_after is not None:
            return ErrorAction.PAUSE
        if error.code in AUTH_CODES:
            return ErrorAction.REFRESH_SESSION
        return ErrorAction.NOTE
    if error.code in AUTH_CODES:
        return ErrorAction.REFRESH_SESSION
    if error.retry_after is not None or error.code in TRANSIENT_CODES:
        return ErrorAction.RETRY_LATER
    return ErrorAction.FATAL


def slots_to_ask(free_slots: int, *, draining: bool, paused: bool) -> int:
    """How many jobs a Ready frame asks for now: none while draining or paused."""
    if draining or paused:
        return 0
    return max(0, free_slots)


def bounded_reason(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 1] + "…"


# how long after the edge's last refusal of a result for the node's rate limit the node keeps
# its results paced: longer than the edge's reporting window, so a node that was refused once
# does not burst again into the next window (each window with a refusal is a mark against it)
RESULT_PACE_MEMORY_S = 60.0
# paced results go this much further apart than the limit's interval as the node estimates it
RESULT_PACE_MARGIN = 1.25


class ResultPacer:
    """When results go out after the edge refused one for the node's rate limit: one at a time,
    for RESULT_PACE_MEMORY_S after the last such refusal; otherwise all at once. Resending every
    refused result together when its `retry_after` passed would have the limit refuse all but one
    again, and each window with a refusal is a mark against the node (backoff, health).

    The spacing is the limit's interval as the node can tell it, with a margin: a refusal's
    `retry_after` is only the wait for the next token, but that token regrows from the send
    before the refused one, so the interval is at least from that send to the end of the wait.
    A refusal while already paced means the estimate was short: the spacing doubles."""

    def __init__(self) -> None:
        self._spacing = 0.0
        self._not_before = 0.0
        self._pacing_until = 0.0
        self._sends: deque[float] = deque(maxlen=2)

    def refused(self, retry_after: float, now: float) -> None:
        wait = max(0.0, retry_after)
        before_refused = self._sends[0] if len(self._sends) == self._sends.maxlen else now
        interval = max(wait, now + wait - before_refused)
        paced = now < self._pacing_until
        self._spacing = max(RESULT_PACE_MARGIN * interval, 2 * self._spacing if paced else 0.0)
        self._not_before = max(self._not_before, now + wait)
        self._pacing_until = now + RESULT_PACE_MEMORY_S

    def allowed(self, now: float) -> int | None:
        """How many results may go now: None for all, else 0 or 1."""
        if now >= self._pacing_until:
            return None
        return 1 if now >= self._not_before else 0

    def wait_s(self, now: float) -> float:
        """How long until the next result may go (0 when one may go now)."""
        return 0.0 if self.allowed(now) != 0 else self._not_before - now

    def sent(self, now: float) -> None:
        self._sends.append(now)
        if now < self._pacing_until:
            self._not_before = now + self._spacing
