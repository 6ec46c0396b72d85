"""The claim board: the claim owner's view of every live job, folded from the job aggregates.

Pure and synchronous: the owner (ccn_scheduler.owner) tells it each job's state after every
decision and every replayed event, and asks it which jobs to offer a node, which leases ran
out, and which departed nodes' jobs are due for release. Nothing here is a second source of
truth (ADR 0016): who holds a job is the job's state; a node's holdings are the jobs whose
state names it as holder, plus the claims this process has in flight for it, which is exact
because one owner at a time decides claims. What the board adds is only what the events do not
carry on purpose: lease renewals (kept in memory, so a long job costs no events) and the grace
after a node's socket closed.

Orders: a ready job is offered by priority (higher first), then by age (its job.created's
stream sequence, FIFO). Heaps are pruned lazily: an entry whose job changed since it was pushed
is skipped when it reaches the top.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec

from ccn_core.domain.job import FINISHED, JobState


@dataclass(slots=True)
class Card:
    """One live job: what an offer needs besides the job's state."""

    job_id: str
    job_type: str
    priority: int
    # stream sequence of the event that made it ready last (its creation, or the release or
    # failure that put it back): FIFO within a priority, so a job put back waits its turn
    order: int
    correlation_id: str  # the job's, for every event of its life
    payload: msgspec.Raw  # the creation's payload, as stored: an offer sends these bytes as they are
    state: JobState
    lease_end: datetime | None = None  # renewals move it on; None unless claimed
    claiming_for: str | None = None  # the node a claim of it is being appended for now


@dataclass(slots=True)
class Departure:
    """A node whose socket closed without bye: these of its jobs go back at `release_at` unless
    it comes back and names them, or renews them on another connection."""

    release_at: datetime
    job_ids: set[str] = field(default_factory=set)


def is_claimable(state: JobState, now: datetime) -> bool:
    return state.status == "queued" or (
        state.status == "retry_wait" and state.retry_at is not None and state.retry_at <= now
    )


class ClaimBoard:
    def __init__(self, *, max_live: int) -> None:
        self.max_live = max_live
        self._cards: dict[str, Card] = {}
        # job type → heap of (-priority, order, job_id): the ready jobs of that type
        self._ready: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
        self._waiting: list[tuple[datetime, str]] = []  # (retry_at, job_id): retry_wait jobs
        self._leases: list[tuple[datetime, str]] = []  # (lease end, job_id): claimed jobs
        self._held: dict[str, set[str]] = defaultdict(set)  # node → job ids it holds or is being handed
        self._departures: dict[str, Departure] = {}
        self.payload_bytes = 0

    # -- what the owner tells it -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._cards)

    def get(self, job_id: str) -> Card | None:
        return self._cards.get(job_id)

    def add(
        self, job_id: str, state: JobState, *, priority: int, order: int, correlation_id: str, payload: msgspec.Raw
    ) -> Card:
        """A job whose creation was appended (or replayed)."""
        card = Card(
            job_id=job_id,
            job_type=state.job_type,
            priority=priority,
            order=order,
            correlation_id=correlation_id,
            payload=payload,
            state=state,
        )
        self._cards[job_id] = card
        self.payload_bytes += len(payload)
        self._place(card, previous=None)
        return card

    def track(self, job_id: str, state: JobState, version: int) -> None:
        """The job's state after a decision, at `version` (the stream sequence it was left at)."""
        card = self._cards.get(job_id)
        if card is None:
            return  # not live here: finished before, or created before this board was built
        previous = card.state
        card.state = state
        if previous.status in ("claimed", "validating") and state.status in ("queued", "retry_wait"):
            card.order = version
        if card.claiming_for is not None:
            if card.claiming_for != state.holder:
                self._release_slot(card.claiming_for, job_id)  # the claim did not land for it
            card.claiming_for = None
        if state.status in FINISHED:
            self._drop(card, previous)
            return
        self._place(card, previous=previous)

    def unclaim(self, job_id: str) -> None:
        """A claim picked the job and did not append: it is as it was."""
        card = self._cards.get(job_id)
        if card is None or card.claiming_for is None:
            return
        self._release_slot(card.claiming_for, job_id)
        card.claiming_for = None
        self._place(card, previous=None)

    def _drop(self, card: Card, previous: JobState) -> None:
        del self._cards[card.job_id]
        self.payload_bytes -= len(card.payload)
        if previous.holder is not None:
            self._release_slot(previous.holder, card.job_id)

    def _place(self, card: Card, *, previous: JobState | None) -> None:
        state = card.state
        if previous is not None and previous.holder is not None and previous.holder != state.holder:
            self._release_slot(previous.holder, card.job_id)
        if state.status == "claimed" and state.holder is not None:
            self._held[state.holder].add(card.job_id)
            same_claim = previous is not None and previous.status == "claimed" and previous.attempt == state.attempt
            if not same_claim or card.lease_end is None:
                card.lease_end = state.lease_until
            elif state.lease_until is not None:
                card.lease_end = max(card.lease_end, state.lease_until)
            if card.lease_end is not None:
                heapq.heappush(self._leases, (card.lease_end, card.job_id))
            return
        card.lease_end = None
        if state.status == "queued":
            heapq.heappush(self._ready[card.job_type], (-card.priority, card.order, card.job_id))
        elif state.status == "retry_wait" and state.retry_at is not None:
            heapq.heappush(self._waiting, (state.retry_at, card.job_id))

    def _release_slot(self, node_id: str, job_id: str) -> None:
        held = self._held.get(node_id)
        if held is not None:
            held.discard(job_id)
            if not held:
                del self._held[node_id]
        departure = self._departures.get(node_id)
        if departure is not None:
            departure.job_ids.discard(job_id)
            if not departure.job_ids:
                del self._departures[node_id]

    # -- claims ------------------------------------------------------------------------------

    def held(self, node_id: str) -> int:
        """Jobs the node holds, and those a claim is handing it now."""
        return len(self._held.get(node_id, ()))

    def held_jobs(self, node_id: str) -> list[Card]:
        return [self._cards[job_id] for job_id in sorted(self._held.get(node_id, ())) if job_id in self._cards]

    def pick(self, node_id: str, job_types: Iterable[str], concurrency: int, slots: int, now: datetime) -> list[Card]:
        """Up to `min(slots, concurrency - held)` ready jobs of the given types, best first,
        marked as being claimed for the node (they count against its concurrency at once). A job
        whose result from this node was set aside (it is shadow-banned) is left for others."""
        want = min(slots, concurrency - self.held(node_id))
        if want <= 0:
            return []
        self._wake_due(now)
        heaps = [self._ready[job_type] for job_type in dict.fromkeys(job_types) if self._ready.get(job_type)]
        picked: list[Card] = []
        passed: list[tuple[list[tuple[int, int, str]], tuple[int, int, str]]] = []
        while len(picked) < want and heaps:
            best = None
            for heap in heaps:
                self._prune(heap, now)
                if heap and (best is None or heap[0] < best[0]):
                    best = heap
            if best is None:
                break
            entry = heapq.heappop(best)
            card = self._cards[entry[2]]
            if card.state.set_aside and card.state.set_aside_by(node_id):
                passed.append((best, entry))  # its result was set aside here: others take it
            else:
                card.claiming_for = node_id
                self._held[node_id].add(card.job_id)
                picked.append(card)
            heaps = [heap for heap in heaps if heap]
        for heap, entry in passed:
            heapq.heappush(heap, entry)
        return picked

    def _prune(self, heap: list[tuple[int, int, str]], now: datetime) -> None:
        while heap:
            card = self._cards.get(heap[0][2])
            if card is not None and card.claiming_for is None and is_claimable(card.state, now):
                return
            heapq.heappop(heap)

    def _wake_due(self, now: datetime) -> None:
        """Jobs whose retry time has come join the ready heaps."""
        while self._waiting and self._waiting[0][0] <= now:
            _, job_id = heapq.heappop(self._waiting)
            card = self._cards.get(job_id)
            if card is not None and card.state.status == "retry_wait" and is_claimable(card.state, now):
                heapq.heappush(self._ready[card.job_type], (-card.priority, card.order, card.job_id))

    def ready_count(self, now: datetime) -> int:
        """Jobs a claim could take now (a gauge; costs a pass over the live jobs)."""
        return sum(1 for card in self._cards.values() if card.claiming_for is None and is_claimable(card.state, now))

    def next_retry(self) -> datetime | None:
        return self._waiting[0][0] if self._waiting else None

    # -- leases ------------------------------------------------------------------------------

    def renew(self, node_id: str, job_id: str, now: datetime) -> datetime | None:
        """The lease's new end, or None when the node does not hold the job."""
        card = self._cards.get(job_id)
        if card is None or card.state.status != "claimed" or card.state.holder != node_id:
            return None
        card.lease_end = now + timedelta(seconds=card.state.lease_s)
        heapq.heappush(self._leases, (card.lease_end, job_id))
        departure = self._departures.get(node_id)
        if departure is not None:  # renewed on another connection: still worked on
            departure.job_ids.discard(job_id)
            if not departure.job_ids:
                del self._departures[node_id]
        return card.lease_end

    def expired(self, now: datetime) -> list[Card]:
        """Claimed jobs whose lease (with its renewals) ended before `now`."""
        due: list[Card] = []
        while self._leases and self._leases[0][0] < now:
            end, job_id = heapq.heappop(self._leases)
            card = self._cards.get(job_id)
            if card is not None and card.state.status == "claimed" and card.lease_end == end:
                due.append(card)
        return due

    def expire_later(self, job_id: str) -> None:
        """An expiry that could not be decided: the next sweep finds the lease due again."""
        card = self._cards.get(job_id)
        if card is not None and card.state.status == "claimed" and card.lease_end is not None:
            heapq.heappush(self._leases, (card.lease_end, job_id))

    def extend_all(self, now: datetime) -> None:
        """Every lease lasts at least one full term from `now`: a new owner does not know the
        renewals its predecessor saw, so it gives each holder a whole lease from its own start."""
        for card in self._cards.values():
            if card.state.status != "claimed" or card.lease_end is None:
                continue
            until = now + timedelta(seconds=card.state.lease_s)
            if card.lease_end < until:
                card.lease_end = until
                heapq.heappush(self._leases, (until, card.job_id))

    # -- nodes that left ---------------------------------------------------------------------

    def departed(self, node_id: str, job_ids: Iterable[str] | None, release_at: datetime) -> int:
        """The node's connection closed: these of its jobs (all it holds when None) are released
        at `release_at` unless it comes back first. Returns how many are pending."""
        held = self._held.get(node_id, set())
        named = set(held if job_ids is None else job_ids) & held
        if not named:
            return 0
        departure = self._departures.get(node_id)
        if departure is None:
            departure = self._departures[node_id] = Departure(release_at=release_at)
        else:
            departure.release_at = min(departure.release_at, release_at)
        departure.job_ids |= named
        return len(departure.job_ids)

    def returned(self, node_id: str, running: Iterable[str] | None) -> None:
        """The node said hello again: the jobs it names (every one when it names none) are its
        still; those it does not name stay due for release."""
        departure = self._departures.get(node_id)
        if departure is None:
            return
        if running is None:
            del self._departures[node_id]
            return
        departure.job_ids -= set(running)
        if not departure.job_ids:
            del self._departures[node_id]

    def due_departures(self, now: datetime) -> list[tuple[str, list[str]]]:
        """(node, job ids) whose grace has passed; they leave the board's departures."""
        due = [node_id for node_id, departure in self._departures.items() if departure.release_at <= now]
        return [(node_id, sorted(self._departures.pop(node_id).job_ids)) for node_id in due]


class ForeignWrites:
    """Which stream sequences the owner did not write itself. One owner writes the job stream,
    so normally none; but a predecessor's last append can land after the takeover read the
    stream, and an operator's tool may append. Those jobs would sit unseen on the board, so the
    owner reads every sequence it did not write, at most one reconcile period late."""

    def __init__(self, read_up_to: int) -> None:
        self.watermark = read_up_to  # every sequence up to here is accounted for
        self._own: set[int] = set()

    def own(self, first: int, last: int) -> None:
        if last > self.watermark:
            self._own.update(range(max(first, self.watermark + 1), last + 1))

    def foreign(self, up_to: int) -> list[int]:
        """Sequences after the watermark, up to `up_to`, that are not the owner's; the watermark
        moves to `up_to`. Call it with a last sequence seen one period ago, so the owner's own
        appends still in flight then have had their acks."""
        if up_to <= self.watermark:
            return []
        found = [seq for seq in range(self.watermark + 1, up_to + 1) if seq not in self._own]
        self._own = {seq for seq in self._own if seq > up_to}
        self.watermark = up_to
        return found
