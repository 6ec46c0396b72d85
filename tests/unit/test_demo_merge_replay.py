"""The demo's merge scene in a home where it has played: a second `ccn up --demo` names the
versions the first one published, instead of waiting out a review that cannot come."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

from ccn_cli.demo_merge import MergeScene, _played_before, run_merge_scene
from ccn_core.settings import Settings
from ccn_proto.merge import DiffReply, RecordDiffView, VersionList, VersionView

T = TypeVar("T")


class RecordedEdge:
    """Answers the two reads the check makes; fails on anything else (no job may be submitted)."""

    def __init__(self, versions: list[VersionView], changed: list[RecordDiffView]) -> None:
        self.versions, self.changed = versions, changed
        self.calls: list[str] = []

    def call(self, method: str, path: str, body: bytes | None = None, headers: Any = None) -> bytes:
        self.calls.append(f"{method} {path}")
        if path == "/datasets/grants/versions":
            return msgspec.json.encode(VersionList(dataset="grants", versions=self.versions))
        if path.startswith("/datasets/grants/diff?"):
            counts = {"added_count": 0, "removed_count": 0, "changed_count": len(self.changed)}
            diff = DiffReply(
                dataset="grants",
                from_version=1,
                to_version=2,
                added=[],
                removed=[],
                changed=self.changed,
                truncated=False,
                **counts,
            )
            return msgspec.json.encode(diff)
        raise AssertionError(f"unexpected call {method} {path}")

    def get(self, path: str, into: type[T]) -> T:  # as EdgeClient.get
        return msgspec.json.decode(self.call("GET", path), type=into)


def version(number: int, note: str) -> VersionView:
    return VersionView(
        dataset="grants",
        version=number,
        content_hash="0" * 64,
        records=1,
        schema_version="1",
        by="admin",
        note=note,
        published_at=datetime.now(UTC),
    )


def changed(record_id: str) -> RecordDiffView:
    return RecordDiffView(record_id=record_id, kind="funder", fields=[])


def test_a_home_where_the_scene_played_gives_its_versions_and_record() -> None:
    edge = RecordedEdge(
        [version(1, "demo: the foundation as first merged"), version(2, "demo: the reviewed name")],
        [changed("fun-1")],
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
        [changed("fun-9")],
    )
    monkeypatch.setattr("ccn_cli.demo_merge.edge_client", lambda settings: edge)
    said: list[str] = []
    scene = run_merge_scene(Settings(home=tmp_path), "corr", "batch", said.append)
    assert scene == MergeScene(record_id="fun-9", versions=(3, 4))
    assert said == ["demo: the merge scene played in this home before: versions 3 and 4"]
