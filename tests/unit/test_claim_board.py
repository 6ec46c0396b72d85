"""The claim board, pure: order of offers, a node's concurrency, leases with renewals that are
not events, the grace of a departed node, and the owner's tally of its own writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from ccn_core.domain.job import JobState
from ccn_scheduler.board import ClaimBoard, ForeignWrites

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
PAYLOAD = msgspec.Raw(b'{"text":"x"}')


def queued(job_id: str, job_type: str = "echo") -> JobState:
    return JobState(job_id=job_id, status="queued", job_type=job_type, lease_s=60.0, max_retries=3)


def claimed(state: JobState, node: str, at: datetime = T0, attempt: int = 1) -> JobState:
    return msgspec.structs.replace(
        state,
        status="claimed",
        holder=node,
        attempt=attempt,
        lease_until=at + timedelta(seconds=state.lease_s),
        claimed_by=node,
    )


def board_with(*jobs: tuple[str, int], job_type: str = "echo") -> ClaimBoard:
    board = ClaimBoard(max_live=100)
    for order, (job_id, priority) in enumerate(jobs, start=1):
        board.add(
            job_id,
            queued(job_id, job_type),
            priority=priority,
            order=order,
            correlation_id=f"c-{job_id}",
            payload=PAYLOAD,
        )
    return board


def take(
    board: ClaimBoard, node: str, *, slots: int = 1, concurrency: int = 8, types: tuple[str, ...] = ("echo",)
) -> list[str]:
    return [card.job_id for card in board.pick(node, types, concurrency, slots, T0)]


def land(board: ClaimBoard, job_id: str, node: str, version: int = 100) -> None:
    card = board.get(job_id)
    assert card is not None
    board.track(job_id, claimed(card.state, node), version)


def test_higher_priority_first_then_oldest_first_across_job_types() -> None:
    board = board_with(("a", 0), ("b", 0), ("urgent", 10))
    board.add("other", queued("other", "count"), priority=5, order=9, correlation_id="c", payload=PAYLOAD)
    assert take(board, "n1", slots=4, types=("echo", "count")) == ["urgent", "other", "a", "b"]


def test_a_node_never_gets_more_than_its_concurrency_counting_claims_in_flight() -> None:
    board = board_with(("a", 0), ("b", 0), ("c", 0))
    assert take(board, "n1", slots=5, concurrency=2) == ["a", "b"]
    assert board.held("n1") == 2
    assert take(board, "n1", slots=1, concurrency=2) == []  # both still being claimed
    land(board, "a", "n1")
    assert board.held("n1") == 2 and take(board, "n1", concurrency=2) == []
    board.track("a", msgspec.structs.replace(board.get("a").state, status="completed", holder=None), 101)  # type: ignore[union-attr]
    assert board.get("a") is None and board.held("n1") == 1
    assert take(board, "n1", concurrency=2) == ["c"]


def test_a_job_is_picked_for_one_claim_at_a_time() -> None:
    board = board_with(("a", 0))
    assert take(board, "n1") == ["a"]
    assert take(board, "n2") == []
    board.unclaim("a")  # the append did not happen: ready again, the slot given back
    assert board.held("n1") == 0
    assert take(board, "n2") == ["a"]


def test_a_claim_that_landed_for_another_node_frees_the_pickers_slot() -> None:
    board = board_with(("a", 0))
    assert take(board, "n1") == ["a"]
    land(board, "a", "n-elsewhere")  # the OCC append failed; the fresh state names another holder
    assert board.held("n1") == 0 and board.held("n-elsewhere") == 1


def test_a_job_put_back_waits_behind_those_queued_before() -> None:
    board = board_with(("a", 0), ("b", 0))
    assert take(board, "n1") == ["a"]
    land(board, "a", "n1", version=10)
    board.track("a", queued("a"), 11)  # released
    assert take(board, "n2", slots=2) == ["b", "a"]


def test_a_failed_job_is_offered_only_once_its_retry_time_has_come() -> None:
    board = board_with(("a", 0))
    take(board, "n1")
    land(board, "a", "n1")
    retry_at = T0 + timedelta(seconds=5)
    waiting = msgspec.structs.replace(board.get("a").state, status="retry_wait", holder=None, retry_at=retry_at)  # type: ignore[union-attr]
    board.track("a", waiting, 12)
    assert board.pick("n2", ["echo"], 1, 1, T0) == []
    assert board.next_retry() == retry_at
    assert [c.job_id for c in board.pick("n2", ["echo"], 1, 1, retry_at)] == ["a"]


def test_a_renewed_lease_expires_only_after_its_last_renewal() -> None:
    board = board_with(("a", 0))
    take(board, "n1")
    land(board, "a", "n1")
    end = T0 + timedelta(seconds=60)
    assert board.expired(end + timedelta(seconds=1))[0].job_id == "a"
    board.expire_later("a")
    renewed = board.renew("n1", "a", T0 + timedelta(seconds=50))
    assert renewed == T0 + timedelta(seconds=110)
    assert board.expired(end + timedelta(seconds=1)) == []
    assert [c.job_id for c in board.expired(renewed + timedelta(seconds=1))] == ["a"]
    assert board.renew("n2", "a", T0) is None  # only the holder renews


def test_a_new_owner_gives_every_holder_a_full_lease() -> None:
    board = board_with(("a", 0))
    take(board, "n1")
    land(board, "a", "n1")
    later = T0 + timedelta(minutes=5)
    board.extend_all(later)
    assert board.expired(later + timedelta(seconds=59)) == []
    assert len(board.expired(later + timedelta(seconds=61))) == 1


def test_a_departed_node_loses_its_jobs_after_the_grace_unless_it_comes_back_for_them() -> None:
    board = board_with(("a", 0), ("b", 0), ("c", 0))
    take(board, "n1", slots=3)
    for job_id in ("a", "b", "c"):
        land(board, job_id, "n1")
    grace_end = T0 + timedelta(seconds=10)
    assert board.departed("n1", ["a", "b", "c", "not-its-own"], grace_end) == 3
    board.returned("n1", ["a"])  # its hello names a: it still runs it
    board.renew("n1", "b", T0)  # b renewed on another connection
    assert board.due_departures(T0) == []
    assert board.due_departures(grace_end) == [("n1", ["c"])]
    assert board.due_departures(grace_end + timedelta(hours=1)) == []


def test_a_node_back_without_naming_its_jobs_keeps_them_all() -> None:
    board = board_with(("a", 0))
    take(board, "n1")
    land(board, "a", "n1")
    board.departed("n1", None, T0)
    board.returned("n1", None)
    assert board.due_departures(T0 + timedelta(hours=1)) == []


def test_the_owner_reads_only_the_sequences_it_did_not_write() -> None:
    writes = ForeignWrites(read_up_to=10)
    writes.own(11, 12)
    writes.own(14, 14)
    assert writes.foreign(15) == [13, 15]
    assert writes.foreign(15) == []
    writes.own(16, 18)
    assert writes.foreign(17) == []
    assert writes.foreign(19) == [19]


def with_group(board: ClaimBoard, first_holder: str, first_ip: str | None, *replicas: str) -> None:
    """A consensus group: job "g" validating after `first_holder`'s result, and its replicas queued."""
    board.add(
        "g",
        msgspec.structs.replace(
            queued("g"), status="validating", claimed_by=first_holder, claimed_ip_hash=first_ip, attempt=1
        ),
        priority=0,
        order=1,
        correlation_id="c-g",
        payload=PAYLOAD,
    )
    for order, replica in enumerate(replicas, start=2):
        state = msgspec.structs.replace(queued(replica), replica_of="g")
        board.add(replica, state, priority=1, order=order, correlation_id="c-g", payload=PAYLOAD)


def test_a_replica_never_goes_to_a_node_or_an_address_that_held_a_job_of_its_group() -> None:
    board = ClaimBoard(max_live=100)
    with_group(board, "n1", "addr-1", "r1", "r2")
    board.add("other", queued("other"), priority=0, order=9, correlation_id="c", payload=PAYLOAD)
    assert [c.job_id for c in board.pick("n1", ("echo",), 8, 3, T0, ip_hash="addr-9")] == ["other"]
    assert [c.job_id for c in board.pick("twin", ("echo",), 8, 3, T0, ip_hash="addr-1")] == []
    # one node takes one replica of the group, even when it asks for several at once
    assert [c.job_id for c in board.pick("n2", ("echo",), 8, 3, T0, ip_hash="addr-2")] == ["r1"]
    card = board.get("r1")
    assert card is not None
    board.track("r1", msgspec.structs.replace(claimed(card.state, "n2"), claimed_ip_hash="addr-2"), 100)
    assert [c.job_id for c in board.pick("n3", ("echo",), 8, 3, T0, ip_hash="addr-2")] == []  # n2's address
    assert [c.job_id for c in board.pick("n3", ("echo",), 8, 3, T0, ip_hash=None)] == ["r2"]


def test_nodes_without_a_known_address_are_kept_apart_by_their_ids_alone() -> None:
    board = ClaimBoard(max_live=100)
    with_group(board, "n1", None, "r1")
    assert [c.job_id for c in board.pick("n1", ("echo",), 8, 1, T0)] == []
    assert [c.job_id for c in board.pick("n2", ("echo",), 8, 1, T0)] == ["r1"]


def test_a_group_is_forgotten_with_its_last_replica() -> None:
    board = ClaimBoard(max_live=100)
    with_group(board, "n1", None, "r1")
    board.track("r1", msgspec.structs.replace(board.get("r1").state, status="cancelled"), 50)  # type: ignore[union-attr]
    assert board.group_holders("g") == [("n1", None)]
    board.add("late", queued("late"), priority=0, order=60, correlation_id="c", payload=PAYLOAD)
    assert [c.job_id for c in board.pick("n1", ("echo",), 8, 1, T0)] == ["late"]
