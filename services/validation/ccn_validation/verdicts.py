"""A job's result aggregate as the validation service writes it: the quarantine decider's
verdict on a submitted result, with the signed receipt for it in the verdict event, and what
the verdict asks of the job (ADR 0024).

The receipt is part of the verdict, not a step after it: one event, so a node whose result was
judged always has a receipt to fetch, and one message (ADR 0027: an atomic batch of a verdict
and a receipt cost nats-server a file store of its own per result). The
key ring comes in at construction, as the validator does: the decision is still a function of
the command, the state and the keys (Ed25519 signatures are deterministic), so a replay of the
events needs no key at all.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import msgspec

from ccn_core.receipts import KeyRing
from ccn_proto.receipts import Receipt, Verdict
from ccn_proto.results import (
    MAX_REASON_MESSAGE_CHARS,
    Reason,
    ReceiptedVerdict,
    ResultEvent,
    ResultRejected,
    ResultValidated,
)
from ccn_validation.quarantine import (
    Judge,
    JudgedResult,
    QuarantineDecider,
    ResultKey,
    VerdictCommand,
    VerdictState,
)

# what a settled result asks of its job: its answer, or another try
Settlement = Literal["complete", "reject"]
# the reasons a job's rejection summarises (every reason stays on the result aggregate)
_SUMMARISED_REASONS = 3


class JudgeWithReceipt(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """Judge the result and, when the verdict is new, sign its receipt. `signature`: the node's
    own over (job, attempt, checksum), as the edge checked it; the receipt carries it."""

    judge: Judge
    now: datetime
    signature: str | None = None


ResultCommand = JudgeWithReceipt | VerdictCommand


class ResultDecider:
    """The quarantine decider, with a receipt signed for each verdict it reaches."""

    aggregate = "result"

    def __init__(self, key_ring: Callable[[], KeyRing], quarantine: QuarantineDecider | None = None) -> None:
        self._key_ring = key_ring
        self._quarantine = quarantine or QuarantineDecider()

    def initial_state(self, aggregate_id: str) -> VerdictState:
        return self._quarantine.initial_state(aggregate_id)

    def decide(self, command: ResultCommand, state: VerdictState, now: datetime) -> list[ResultEvent]:
        if not isinstance(command, JudgeWithReceipt):
            return list(self._quarantine.decide(command, state, now))
        events: list[ResultEvent] = []
        for event in self._quarantine.decide(command.judge, state, now):
            if isinstance(event, ResultValidated | ResultRejected):
                verdict: Verdict = "validated" if isinstance(event, ResultValidated) else "rejected"
                receipt = receipt_of(self._key_ring(), state.job_id, event, verdict, command.now, command.signature)
                event = msgspec.structs.replace(event, receipt=receipt)
            events.append(event)
        return events

    def evolve(self, state: VerdictState, event: ResultEvent) -> VerdictState:
        return self._quarantine.evolve(state, event)


def receipt_of(
    ring: KeyRing,
    job_id: str,
    result: ReceiptedVerdict,
    verdict: Verdict,
    now: datetime,
    node_signature: str | None = None,
) -> Receipt:
    """The signed receipt for the result a verdict names, for the verdict event to carry."""
    return ring.issue_receipt(
        job_id=job_id,
        attempt=result.attempt,
        node_id=result.node_id,
        result_checksum=result.checksum,
        verdict=verdict,
        now=now,
        node_signature=node_signature,
    )


def settlement_of(judged: JudgedResult) -> Settlement:
    """A validated or released result is the job's answer; a rejected or discarded one is not."""
    return "complete" if judged.status in ("validated", "released") else "reject"


def judged_result(state: VerdictState, node_id: str, attempt: int, checksum: str) -> JudgedResult | None:
    return state.find(ResultKey(node_id, attempt, checksum))


def rejection_summary(events: list[Any]) -> str:
    """One line for the job's history: the first reasons of the rejection, and how many more."""
    rejected = next((event for event in events if isinstance(event, ResultRejected)), None)
    if rejected is None:
        return "the result was rejected (see its result aggregate for the reasons)"
    shown = "; ".join(_reason_text(reason) for reason in rejected.reasons[:_SUMMARISED_REASONS])
    more = len(rejected.reasons) - _SUMMARISED_REASONS
    summary = f"result rejected: {shown}" + (f" (and {more} more)" if more > 0 else "")
    return summary[:MAX_REASON_MESSAGE_CHARS]


def _reason_text(reason: Reason) -> str:
    where = f" at {reason.field}" if reason.field else ""
    return f"{reason.code}{where}: {reason.message}"
