"""Job outcomes summed per node over a window of the job stream: the pure core of the
governance observer's record of work (node.work_recorded).

A window is a run of CCN_JOBS events, first to last stream sequence; what it records for a node
is a function of those events and of what came before them (each job's claim, the results set
aside for it, the node's budgets), so a window cut at the same sequences after a crash records
the same thing under the same key, and the registry writes it once (window_key).

- completed: a job.completed of the node; total_job_ms sums claim → completion over them.
- failed / budget_exceeded: a job.failed of the node, by its kind (budget_exceeded apart, as the
  node decider counts the two apart).
- abandoned: a job.abandoned (its lease ran out on the node).
- budget_misreported: a completion whose reported usage exceeds the budgets the node is held
  to (ccn_proto.budgets.over_budget).
- agreed / disagreed: when a job completes, each result set aside for it from another node
  (a shadow-banned node's) is compared by checksum, and counted for *that* node.

A second reader keeps windows of CCN_RESULTS the same way (DisagreementAggregator):
- consensus_disagreed: a consensus.node_disagreed of the node (its result was outside the
  answer a consensus agreed on), keyed `results:<first>-<last>`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import msgspec

from ccn_proto.budgets import JobBudget, JobUsage, over_budget
from ccn_proto.consensus import NodeDisagreed
from ccn_proto.jobs import (
    JobAbandoned,
    JobCancelled,
    JobClaimed,
    JobCompletedBytes,
    JobDead,
    JobFailed,
    JobReleased,
    JobResultRejected,
    JobResultSetAside,
    JobResultSubmittedBytes,
)
from ccn_proto.nodes import NodeBudgetsSet, NodeWorkRecorded

# what the observer reads of CCN_JOBS (topology.GOVERNANCE_WORK names their subjects): job.created
# (payloads) and lease renewals are not read
ObservedJobEvent = (
    JobClaimed
    | JobResultSubmittedBytes
    | JobResultRejected
    | JobCompletedBytes
    | JobFailed
    | JobAbandoned
    | JobResultSetAside
    | JobReleased
    | JobDead
    | JobCancelled
)
# jobs held in memory between their claim and their end, and jobs with results set aside: past
# these, the oldest are forgotten (a completion whose claim was forgotten has its claim looked up
# again by the shell; one whose set-aside results were forgotten compares none of them)
MAX_CLAIMS: Final = 500_000
MAX_SET_ASIDE_JOBS: Final = 100_000
MAX_SET_ASIDE_PER_JOB: Final = 16
_MAX_JOB_MS: Final = 2**62


def window_key(first_seq: int, last_seq: int, stream: str = "jobs") -> str:
    """The record_work key of a window of a stream (`jobs`, `results`): the registry derives the
    event id from it and the node, so the same window sent twice (a crash between sending and
    checkpointing) is written once."""
    return f"{stream}:{first_seq}-{last_seq}"


def budget_of(budgets: NodeBudgetsSet | None) -> JobBudget | None:
    if budgets is None:
        return None
    return JobBudget(
        max_cpu_time_s=budgets.max_cpu_time_per_job_s,
        max_memory_mb=budgets.max_memory_mb,
        max_bandwidth_per_min=budgets.max_bandwidth_per_min,
    )


@dataclass(frozen=True)
class Claim:
    node_id: str
    attempt: int
    at: datetime


@dataclass
class _Tally:
    completed: int = 0
    failed: int = 0
    abandoned: int = 0
    budget_exceeded: int = 0
    budget_misreported: int = 0
    agreed: int = 0
    disagreed: int = 0
    consensus_disagreed: int = 0
    total_job_ms: int = 0


@dataclass
class Window:
    first_seq: int = 0
    last_seq: int = 0
    start: datetime | None = None
    end: datetime | None = None
    tallies: dict[str, _Tally] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.first_seq == 0

    def extend(self, seq: int, at: datetime) -> None:
        """The window now runs to event `seq`, which happened `at`."""
        if self.empty:
            self.first_seq = seq
        self.last_seq = seq
        self.start = at if self.start is None else min(self.start, at)
        self.end = at if self.end is None else max(self.end, at)

    def tally(self, node_id: str) -> _Tally:
        found = self.tallies.get(node_id)
        if found is None:
            found = self.tallies[node_id] = _Tally()
        return found

    def records(self) -> dict[str, NodeWorkRecorded]:
        """What the window records, per node with anything to record."""
        if self.start is None or self.end is None:
            return {}
        return {
            node_id: NodeWorkRecorded(window_start=self.start, window_end=self.end, **vars(tally))
            for node_id, tally in self.tallies.items()
            if any(vars(tally).values())
        }


class WorkAggregator:
    """Folds observed job events, in stream order, into the open window."""

    def __init__(self) -> None:
        self.claims: OrderedDict[str, Claim] = OrderedDict()
        self.set_aside: OrderedDict[str, list[tuple[str, str]]] = OrderedDict()  # job → (node, checksum)
        self.budgets: dict[str, JobBudget | None] = {}
        self.window = Window()

    def knows_claim(self, job_id: str, node_id: str, attempt: int) -> bool:
        claim = self.claims.get(job_id)
        return claim is not None and claim.node_id == node_id and claim.attempt == attempt

    def learn_claim(self, job_id: str, claim: Claim) -> None:
        """A claim from before this observer's start, looked up by the shell."""
        self._remember_claim(job_id, claim)

    def learn_set_aside(self, job_id: str, node_id: str, checksum: str) -> None:
        kept = self.set_aside.setdefault(job_id, [])
        if len(kept) < MAX_SET_ASIDE_PER_JOB:
            kept.append((node_id, checksum))
        self.set_aside.move_to_end(job_id)
        while len(self.set_aside) > MAX_SET_ASIDE_JOBS:
            self.set_aside.popitem(last=False)

    def observe(self, seq: int, job_id: str, at: datetime, event: ObservedJobEvent) -> None:
        window = self.window
        window.extend(seq, at)
        match event:
            case JobClaimed(node_id=node, attempt=attempt):
                self._remember_claim(job_id, Claim(node_id=node, attempt=attempt, at=at))
            case JobResultSubmittedBytes(node_id=node, attempt=attempt, usage=usage):
                # the node's part ends here: its time and its usage; whether the result counts
                # as a completion or a failure is the verdict's to say
                tally = window.tally(node)
                claim = self._end_claim(job_id, node, attempt)
                if claim is not None:
                    elapsed_ms = round((at - claim.at).total_seconds() * 1000)
                    tally.total_job_ms = min(_MAX_JOB_MS, tally.total_job_ms + max(0, elapsed_ms))
                if self._misreported(node, usage):
                    tally.budget_misreported += 1
            case JobResultRejected(node_id=node):
                window.tally(node).failed += 1  # a result that fails its checks is a failed job
            case JobCompletedBytes(node_id=node, checksum=checksum):
                window.tally(node).completed += 1
                for other, set_aside_checksum in self.set_aside.pop(job_id, []):
                    if other == node:
                        continue
                    other_tally = window.tally(other)
                    if set_aside_checksum == checksum:
                        other_tally.agreed += 1
                    else:
                        other_tally.disagreed += 1
            case JobFailed(node_id=node, attempt=attempt, kind=kind):
                tally = window.tally(node)
                if kind == "budget_exceeded":
                    tally.budget_exceeded += 1
                else:
                    tally.failed += 1
                self._end_claim(job_id, node, attempt)
            case JobAbandoned(node_id=node, attempt=attempt):
                window.tally(node).abandoned += 1
                self._end_claim(job_id, node, attempt)
            case JobResultSetAside(node_id=node, attempt=attempt, checksum=checksum):
                self.learn_set_aside(job_id, node, checksum)
                self._end_claim(job_id, node, attempt)
            case JobReleased(node_id=node, attempt=attempt):
                self._end_claim(job_id, node, attempt)
            case JobDead() | JobCancelled():
                self.claims.pop(job_id, None)
                self.set_aside.pop(job_id, None)

    def close(self) -> Window:
        """The window as it stands, and a fresh one opened after it."""
        closed, self.window = self.window, Window()
        return closed

    def _remember_claim(self, job_id: str, claim: Claim) -> None:
        self.claims[job_id] = claim
        self.claims.move_to_end(job_id)
        while len(self.claims) > MAX_CLAIMS:
            self.claims.popitem(last=False)

    def _end_claim(self, job_id: str, node_id: str, attempt: int) -> Claim | None:
        claim = self.claims.get(job_id)
        if claim is None or claim.node_id != node_id or claim.attempt != attempt:
            return None
        del self.claims[job_id]
        return claim

    def _misreported(self, node_id: str, usage: JobUsage | None) -> bool:
        return usage is not None and bool(over_budget(usage, self.budgets.get(node_id)))


class DisagreementAggregator:
    """Folds consensus.node_disagreed events of CCN_RESULTS, in stream order, into the open window."""

    def __init__(self) -> None:
        self.window = Window()

    def observe(self, seq: int, at: datetime, event: NodeDisagreed) -> None:
        self.window.extend(seq, at)
        self.window.tally(event.node_id).consensus_disagreed += 1

    def close(self) -> Window:
        closed, self.window = self.window, Window()
        return closed


def decode_budgets(data: bytes) -> NodeBudgetsSet:
    """A node.budgets_set envelope's data."""
    return msgspec.json.decode(data, type=_BudgetsEnvelope).data


class _BudgetsEnvelope(msgspec.Struct, frozen=True):
    data: NodeBudgetsSet
