"""The demo's merge scene (`ccn up --demo`): two normalize_funders jobs describe one foundation
(the same EIN) from two sources under two names, and a normalize_opportunities job one of its
grants. The demo nodes run them ahead of the rest of the demo (a higher priority); their final
results merge into the `grants` dataset, where the second name is a change of a critical field
and waits for a reviewer. The demo publishes version 1, approves the change through the edge's
review API, and publishes version 2, so `ccn datasets diff 1 2` shows the reviewed change.

The registry's row is submitted first and the site's row only once the registry's job has
completed: the name rule (`confidence_weighted`, ties to the newest observation) decides which
name stands by the order the results merge, and two jobs run side by side finish in either order.

It waits a bounded time for the review; a slow machine gets a note saying where each job stands,
and the stack goes on. In a home where the scene has played (a second `make run`), its versions
are there already and its jobs would change nothing, so no review would come: the scene is not
played again, and the versions it published are named."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from ccn_cli.jobs_cmd import EdgeClient, EdgeError, edge_client, job_path
from ccn_core.settings import Settings
from ccn_jobs.normalize_funders import NormalizeFundersPayload, RawFunder
from ccn_jobs.normalize_opportunities import NormalizeOpportunitiesPayload, RawOpportunity
from ccn_proto.compute_api import BatchSubmitted
from ccn_proto.merge import DiffReply, VersionList
from ccn_proto.scheduler import JobStatus, JobView

REVIEW_WAIT_S = 90.0
_POLL_S = 0.25
# ahead of the demo's other batches: the scene should play out in seconds, not after them
_PRIORITY = 50
_SETTLED: frozenset[JobStatus] = frozenset({"completed", "dead", "cancelled"})

T = TypeVar("T")


class MergeScene(msgspec.Struct, frozen=True):
    record_id: str
    versions: tuple[int, int]


_FIRST_NOTE = "demo: the foundation as first merged"
_REVIEWED_NOTE = "demo: the reviewed name"


class _Line(msgspec.Struct, frozen=True):
    job_type: str
    payload: msgspec.Struct
    priority: int = _PRIORITY


def merge_jobs() -> tuple[list[_Line], list[_Line]]:
    """The scene's jobs in two steps: the registry's row, then the foundation's own site and one
    of its grants (the site's name is the later observation, so it is the change to review)."""
    registry_row = RawFunder(
        source="irs-bmf",
        source_record_id="311234567",
        name="HARBOR LIGHT FOUNDATION INC",
        ein="311234567",
        address_lines=("12 Quay Street",),
        city="Portland",
        region="ME",
        postcode="04101",
        country="US",
        categories=("B",),
        category_scheme="ntee",
    )
    own_site = RawFunder(
        source="foundation-site",
        source_record_id="harborlight.example/about",
        name="Harbor Light Community Foundation",
        ein="31-1234567",
        website="https://www.harborlight.example/",
        city="Portland",
        region="Maine",
        country="US",
    )
    grant = RawOpportunity(
        source="foundation-site",
        source_record_id="harborlight.example/grants/libraries",
        title="Coastal Library Grants",
        funder_name="Harbor Light Community Foundation",
        amount_text="$5,000 to $25,000",
        deadline_text="30 June 2026",
        date_order="DMY",
        eligibility_text="Public and school libraries in coastal Maine counties",
        url="https://www.harborlight.example/grants/libraries",
    )
    first = [_Line("normalize_funders", NormalizeFundersPayload(records=(registry_row,)))]
    then = [
        _Line("normalize_funders", NormalizeFundersPayload(records=(own_site,))),
        _Line("normalize_opportunities", NormalizeOpportunitiesPayload(records=(grant,), as_of="2026-01-15")),
    ]
    return first, then


def submit_merge_jobs(edge: EdgeClient, correlation_id: str, batch_id: str, lines: list[_Line]) -> BatchSubmitted:
    body = b"".join(msgspec.json.encode(line) + b"\n" for line in lines)
    return edge.post(
        f"/jobs/batch?batch_id={batch_id}&dataset_source=ccn_cli.demo_merge&dataset_version=seed-0",
        body,
        BatchSubmitted,
        headers={"X-Correlation-ID": correlation_id, "Content-Type": "application/x-ndjson"},
    )


def _review_of(edge: EdgeClient, job_ids: set[str]) -> dict[str, Any] | None:
    body = msgspec.json.decode(edge.call("GET", "/admin/review?limit=500"))
    return next((r for r in body["reviews"] if r["provenance"]["job_id"] in job_ids), None)


def _job(edge: EdgeClient, job_id: str) -> JobView:
    return edge.get(job_path(job_id), JobView)


def _poll(deadline: float, probe: Callable[[], T | None]) -> T | None:
    """`probe`'s first answer that is not None, or None once the deadline passes."""
    while True:
        answer = probe()
        if answer is not None or time.monotonic() >= deadline:
            return answer
        time.sleep(_POLL_S)


def _settled(edge: EdgeClient, job_id: str) -> JobStatus | None:
    status = _job(edge, job_id).status
    return status if status in _SETTLED else None


def _where_jobs_stand(edge: EdgeClient, job_ids: list[str]) -> str:
    def one(job_id: str) -> str:
        try:
            view = _job(edge, job_id)
        except EdgeError as exc:
            return f"{job_id} unreadable ({exc.message})"
        held = f" by {view.holder}" if view.holder else ""
        return f"{job_id} {view.job_type} {view.status}{held} (attempt {view.attempt})"

    return "; ".join(one(job_id) for job_id in job_ids)


def _played_before(edge: EdgeClient) -> MergeScene | None:
    """The scene as an earlier run in this home left it: its two versions and the record whose
    reviewed change lies between them; None when it has not played here."""
    versions = edge.get("/datasets/grants/versions", VersionList).versions
    first = next((v.version for v in versions if v.note == _FIRST_NOTE), None)
    second = next((v.version for v in versions if v.note == _REVIEWED_NOTE), None)
    if first is None or second is None or second <= first:
        return None
    diff = edge.get(f"/datasets/grants/diff?from={first}&to={second}&limit=1", DiffReply)
    if not diff.changed:
        return None
    return MergeScene(record_id=diff.changed[0].record_id, versions=(first, second))


def _publish(edge: EdgeClient, note: str) -> int:
    body: dict[str, Any] = edge.post("/datasets/grants/versions", msgspec.json.encode({"note": note}), dict)
    return int(body["version"])


def run_merge_scene(
    settings: Settings, correlation_id: str, batch_id: str, report: Callable[[str], None]
) -> MergeScene | None:
    edge = edge_client(settings)
    if (earlier := _played_before(edge)) is not None:
        first_version, second_version = earlier.versions
        report(f"demo: the merge scene played in this home before: versions {first_version} and {second_version}")
        return earlier
    first_lines, then_lines = merge_jobs()
    deadline = time.monotonic() + REVIEW_WAIT_S
    first = submit_merge_jobs(edge, correlation_id, f"{batch_id}-registry", first_lines)
    [registry_job] = first.job_ids
    report(f"demo: a normalize_funders job from the IRS registry submitted as batch {batch_id}-registry")
    job_ids = list(first.job_ids)
    review = None
    if _poll(deadline, lambda: _settled(edge, registry_job)) == "completed":
        then = submit_merge_jobs(edge, correlation_id, f"{batch_id}-site", then_lines)
        job_ids += then.job_ids
        report(f"demo: {then.jobs} jobs from the foundation's own site submitted as batch {batch_id}-site")
        review = _poll(deadline, lambda: _review_of(edge, set(then.job_ids)))
    if review is None:
        report(
            f"demo: the merge scene's review did not appear within {REVIEW_WAIT_S:g} s; its jobs: "
            f"{_where_jobs_stand(edge, job_ids)}; see `ccn admin review list` later"
        )
        return None
    try:
        first_version = _publish(edge, _FIRST_NOTE)
        decision = {"comment": "demo: the foundation's own site gives its current name"}
        edge.post(f"/admin/review/{review['review_id']}/approve", msgspec.json.encode(decision), dict)
        second_version = _publish(edge, _REVIEWED_NOTE)
    except EdgeError as exc:
        report(f"demo: the merge scene stopped: {exc.message}")
        return None
    changes = ", ".join(f"{c['field']} {c['before']!r} -> {c['after']!r}" for c in review["changes"])
    report(
        f"demo: results merged; review {review['review_id']} ({changes}) approved; "
        f"versions {first_version} and {second_version}"
    )
    return MergeScene(record_id=review["record_id"], versions=(first_version, second_version))
