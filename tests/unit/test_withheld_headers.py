"""GET /compute/job's 204 tells a node why governance withheld its work and when to ask again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ccn_edge.compute_api import withheld_headers
from ccn_edge.node_link import WITHHELD_RECHECK_S
from ccn_proto.scheduler import ClaimJobsReply

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def reply(withheld: str | None, backoff_until: datetime | None = None) -> ClaimJobsReply:
    return ClaimJobsReply(
        node_id="n", offers=[], held=0, server_time=NOW, withheld=withheld, backoff_until=backoff_until
    )


def test_no_job_for_want_of_work_says_nothing_more() -> None:
    assert withheld_headers(reply(None)) == {}


def test_a_backed_off_node_hears_until_when() -> None:
    until = NOW + timedelta(seconds=29, milliseconds=100)
    assert withheld_headers(reply("backed off (mild)", until)) == {
        "CCN-Withheld": "backed off (mild)",
        "CCN-Backoff-Until": until.isoformat(),
        "Retry-After": "30",
    }


def test_withheld_without_an_end_asks_again_later_and_the_reason_is_one_ascii_line() -> None:
    headers = withheld_headers(reply("offline\r\nSet-Cookie: x=1 — ünïcode" + "x" * 500))
    assert headers["Retry-After"] == str(int(WITHHELD_RECHECK_S))
    assert all(" " <= c <= "~" for c in headers["CCN-Withheld"]) and len(headers["CCN-Withheld"]) == 200
    assert "CCN-Backoff-Until" not in headers
