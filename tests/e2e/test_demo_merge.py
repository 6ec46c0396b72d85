"""`ccn up --demo` (what `make run` does) also merges: the demo's normalize_funders and
normalize_opportunities jobs run on the reference nodes, their final results merge into the
`grants` dataset, the one change of a critical field waits for review, the demo approves it
through the API and publishes versions 1 and 2, and the commands it prints show them."""

from __future__ import annotations

import json

from tests.e2e.conftest import Stack
from tests.e2e.test_demo_jobs import printed


def test_the_demo_merges_its_results_reviews_one_change_and_publishes_versions(stack: Stack) -> None:
    review_id = printed(stack, r"demo: results merged; review (rev-[0-9a-f]{24}) .* approved; versions 1 and 2")
    record_id = printed(stack, r"ccn datasets explain (\S+) name")
    versions = stack.ccn("datasets", "versions", "--json")
    assert versions.returncode == 0, versions.stderr
    assert [v["version"] for v in json.loads(versions.stdout)["versions"]][:2] == [1, 2]
    diff = stack.ccn("datasets", "diff", "1", "2", "--json")
    assert diff.returncode == 0, diff.stderr
    [changed] = [r for r in json.loads(diff.stdout)["changed"] if r["record_id"] == record_id]
    names = {f["field"]: (f["before"], f["after"]) for f in changed["fields"]}
    assert names["name"] == ("Harbor Light Foundation Inc", "Harbor Light Community Foundation")
    explained = stack.ccn("datasets", "explain", record_id, "name")
    assert explained.returncode == 0 and "foundation-site" in explained.stdout, explained.stderr
    pending = stack.ccn("admin", "review", "list", "--json")
    assert review_id not in pending.stdout
