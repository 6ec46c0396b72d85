"""What an edge connection holds and asks for (ccn_edge.node_link.Holdings)."""

from __future__ import annotations

from ccn_edge.node_link import Holdings


def test_room_that_frees_later_is_claimed_without_the_node_asking_again() -> None:
    holdings = Holdings(concurrency=2)
    holdings.resumed("a", "corr-a")
    holdings.resumed("b", "corr-b")
    holdings.ask(2)  # the node says it has room for two: it does not run a or b any more
    assert holdings.to_claim() == 0  # the edge's count is full until it knows better
    assert holdings.confirm([]) == ["a", "b"]  # its heartbeat names neither
    assert holdings.to_claim() == 2
    # a result for one may still come (it finished while the node was away): it is passed on
    assert holdings.correlation_of("a") == "corr-a"
    holdings.release("a")
    assert holdings.correlation_of("a") is None
    holdings.offered("c", "corr-c")
    assert holdings.to_claim() == 1


def test_a_resumed_job_the_node_names_in_a_heartbeat_stays_held() -> None:
    holdings = Holdings(concurrency=2)
    holdings.resumed("a", "corr-a")
    holdings.resumed("b", "corr-b")
    assert holdings.confirm(["a"]) == ["b"]
    assert set(holdings.held) == {"a"}
    # confirmed once: a later heartbeat that omits it (sent before an offer arrived, say) does
    # not drop it; its lease, renewed or not, is the scheduler's to judge
    assert holdings.confirm([]) == []
    assert set(holdings.held) == {"a"}


def test_offers_never_exceed_the_advertised_concurrency() -> None:
    holdings = Holdings(concurrency=1)
    holdings.ask(5)
    assert holdings.to_claim() == 1
    holdings.offered("a", "corr-a")
    assert holdings.to_claim() == 0
    holdings.release("a")
    assert holdings.to_claim() == 1
