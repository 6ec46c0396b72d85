"""The demo's merge scene in a home where it has played: a second `ccn up --demo` names the
versions the first one published, instead of waiting out a review that cannot come."""

from __future__ import annotations

from typing import Any

import msgspec

from ccn_cli.demo_merge import MergeScene, _played_before, run_merge_scene
from ccn_core.settings import Settings


class RecordedEdge:
    """Answers the two reads the check makes; fails on anything else (no job may be submitted)."""

    def __init__(self, versions: list[dict[str, Any]], changed: list[dict[str, Any]]) -> None:
        self.versions, self.changed = versions, changed
        self.calls: list[str] = []

    def call(self, method: str, path: str, body: bytes | None = None, headers: Any = None) -> bytes:
        self.calls.append(f"{method} {path}")
        if path == "/datasets/grants/versions":
            return msgspec.json.encode({"dataset": "grants", "versions": self.versions})
        if path.startswith("/datasets/grants/diff?"):
            return msgspec.json.encode({"changed": self.changed})
        raise AssertionError(f"unexpected call {method} {path}")


def version(number: int, note: str) -> dict[str, Any]:
    return {"version": number, "note": note}


def test_a_home_where_the_scene_played_gives_its_versions_and_record() -> None:
    edge = RecordedEdge(
        [version(1, "demo: the foundation as first merged"), version(2, "demo: the reviewed name")],
        [{"record_id": "fun-1", "kind": "funder", "fields": []}],
    )
    assert _played_before(edge) == MergeScene(record_id="fun-1", versions=(1, 2))  # type: ignore[arg-type]
    assert edge.calls == ["GET /datasets/grants/versions", "GET /datasets/grants/diff?from=1&to=2&limit=1"]


def test_a_fresh_home_or_someone_elses_versions_mean_the_scene_has_not_played() -> None:
    assert _played_before(RecordedEdge([], [])) is None  # type: ignore[arg-type]
    others = RecordedEdge([version(1, "weekly"), version(2, "demo: the reviewed name")], [])
    assert _played_before(others) is None  # type: ignore[arg-type]
    unchanged = RecordedEdge(
        [version(1, "demo: the foundation as first merged"), version(2, "demo: the reviewed name")], []
    )
    assert _played_before(unchanged) is None  # type: ignore[arg-type]


def test_the_scene_is_not_played_again(monkeypatch: Any, tmp_path: Any) -> None:
    edge = RecordedEdge(
        [version(3, "demo: the foundation as first merged"), version(4, "demo: the reviewed name")],
        [{"record_id": "fun-9", "kind": "funder", "fields": []}],
    )
    monkeypatch.setattr("ccn_cli.demo_merge.edge_client", lambda settings: edge)
    said: list[str] = []
    scene = run_merge_scene(Settings(home=tmp_path), "corr", "batch", said.append)
    assert scene == MergeScene(record_id="fun-9", versions=(3, 4))
    assert said == ["demo: the merge scene played in this home before: versions 3 and 4"]
