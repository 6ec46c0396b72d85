"""`ccn domains` and the edge's admin domain API on a small stack (edge, the fetch proxy's
domain-policy part, analytics) on real NATS and Postgres: the example CSV imported twice changes
nothing the second time; hostile rows are rejected one by one with why, and a hostile file as a
whole; allow, block, list and show; every route needs the admin token and every refusal is typed."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ccn_analytics.__main__ import start_analytics
from ccn_cli.main import main
from ccn_core.service import open_runtime
from ccn_core.settings import Settings
from ccn_edge.app import start_edge
from ccn_fetch_proxy.policy_service import start_domain_policy
from tests.conftest import make_settings
from tests.support.servers import until_ready

EXAMPLE_CSV = Path(__file__).resolve().parents[2] / "docs" / "examples" / "domains.csv"
SERVER_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[")
HEADER = "domain,permission,requests_per_minute,max_concurrent,allowed_paths,notes,reviewer,reviewed_at\n"


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.edge = f"http://127.0.0.1:{settings.edge_port}"
        self.analytics = f"http://127.0.0.1:{settings.analytics_port}"


@pytest.fixture
async def stack(
    isolated_nats: str, fresh_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stack]:
    settings = make_settings(isolated_nats, fresh_database, tmp_path)
    async with contextlib.AsyncExitStack() as running:
        await start_domain_policy(await running.enter_async_context(open_runtime("fetch-proxy", settings)))
        await start_analytics(await running.enter_async_context(open_runtime("analytics", settings)))
        start_edge(await running.enter_async_context(open_runtime("edge", settings, needs_postgres=False)))
        async with aiohttp.ClientSession() as http, asyncio.timeout(10):
            for port in (settings.edge_port, settings.analytics_port):
                await until_ready(http, f"http://127.0.0.1:{port}")
        for name, value in (
            ("CCN_HOME", str(tmp_path)),
            ("CCN_EDGE_HOST", "127.0.0.1"),
            ("CCN_EDGE_PORT", str(settings.edge_port)),
            ("CCN_ANALYTICS_HOST", "127.0.0.1"),
            ("CCN_ANALYTICS_PORT", str(settings.analytics_port)),
            ("CCN_ADMIN_TOKEN", settings.admin_token),
        ):
            monkeypatch.setenv(name, value)
        yield Stack(settings)


async def ccn(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`ccn ARGV` in a thread (its HTTP calls block; the servers run in this loop): code, out, err."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    # the servers run in this process: their log lines share stdout with the command's output
    out = "".join(line for line in captured.out.splitlines(keepends=True) if not SERVER_LOG_LINE.match(line))
    return code, out, captured.err


ADMIN = object()  # stands for the stack's admin token


async def request(
    stack: Stack, method: str, path: str, body: Any = None, *, token: object = ADMIN, data: bytes | None = None
) -> tuple[int, Any]:
    """(status, decoded body) of one edge request; `token` None sends no Authorization header."""
    presented = stack.settings.admin_token if token is ADMIN else token
    headers = {} if presented is None else {"Authorization": f"Bearer {presented}"}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"{stack.edge}{path}", json=body, data=data, headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)


async def eventually_listed(capsys: pytest.CaptureFixture[str], *argv: str, expect: str) -> str:
    async with asyncio.timeout(15):
        while True:
            code, out, _ = await ccn(capsys, "domains", *argv)
            if code == 0 and expect in out:
                return out
            await asyncio.sleep(0.1)


async def test_the_example_csv_imports_once_and_the_allow_list_shows_it(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await ccn(capsys, "domains", "import", str(EXAMPLE_CSV))
    assert code == 0, err
    assert "4 rows: 4 accepted (4 changed, 0 unchanged), 0 rejected" in out
    code, out, err = await ccn(capsys, "domains", "import", str(EXAMPLE_CSV))
    assert "4 rows: 4 accepted (0 changed, 4 unchanged), 0 rejected" in out, err

    listing = await eventually_listed(capsys, "list", expect="xn--bcher-stiftung-gsb.example")
    lines = listing.splitlines()
    assert lines[0].split() == [
        "domain",
        "permission",
        "subdomains",
        "rpm",
        "rph",
        "concurrent",
        "reviewer",
        "reviewed",
        "by",
    ]
    assert lines[1].split() == [
        "grants.example.org",
        "allowed",
        "no",
        "30",
        "1200",
        "2",
        "a.reviewer",
        "2026-11-30",
        "admin",
    ]
    assert lines[2].split()[:2] == ["members.example.net", "blocked"]
    code, out, err = await ccn(capsys, "domains", "list", "--permission", "blocked")
    assert code == 0 and "members.example.net" in out and "grants.example.org" not in out, err

    out = await eventually_listed(capsys, "show", "bücher-stiftung.example", expect="permission")
    assert "domain        xn--bcher-stiftung-gsb.example" in out
    assert "paths         /foerderung" in out and "reviewed      b.reviewer on 2026-12-01" in out
    assert "domain.allowed" in out and "by admin" in out


async def test_hostile_rows_are_rejected_one_by_one_with_why(
    stack: Stack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rows = [
        "ok.example.org,allow,10,1,/grants,fine,rev,2026-11-30",
        "bell.example.org,allow,,,,note with a bell \x07 in it,rev,",
        "ok.example.org,allow,20,,,,rev,",  # repeated
        "zero.example.org,allow,0,,,,,",
        "huge.example.org,allow,601,,,,,",
        "words.example.org,allow,ten,,,,,",
        "10.0.0.1,allow,,,,,,",
        "metadata.google.internal.,block,,,,,,",
        "bücher.example,allow,,,,IDN,rev,2026-11-30",
        "future.example.org,allow,,,,,,2999-01-01",
        "cells.example.org,allow,,,,,,,one too many",
        "badpath.example.org,allow,,,grants,,,",
        "esc.example.org,allow,,,,\x1b[31mred,,",
    ]
    path = tmp_path / "hostile.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    code, out, err = await ccn(capsys, "domains", "import", str(path))
    assert code == 1, err  # some rows were rejected; the others are imported all the same
    assert "13 rows: 3 accepted (3 changed, 0 unchanged), 10 rejected" in out, out
    rejected = {line.split()[1]: line for line in out.splitlines() if line.startswith("  line ")}
    assert set(rejected) == {str(n) for n in (3, 4, 5, 6, 7, 8, 11, 12, 13, 14)}, out
    assert "bell.example.org" in rejected["3"] and "notes" in rejected["3"]
    assert "is repeated (first on line 2)" in rejected["4"]
    assert "requests_per_minute" in rejected["5"] and "requests_per_minute" in rejected["6"]
    assert "not a whole number" in rejected["7"]
    assert "IP address" in rejected["8"]
    assert "in the future" in rejected["11"]
    assert "the row has 9 cells but the header names 8" in rejected["12"]
    assert "allowed_paths" in rejected["13"] and "notes" in rejected["14"]
    # the accepted rows, IDN stored as its A-label and the trailing dot dropped
    out = await eventually_listed(capsys, "show", "bücher.example", expect="permission    allowed")
    assert "domain        xn--bcher-kva.example" in out
    out = await eventually_listed(capsys, "show", "metadata.google.internal", expect="permission    blocked")
    assert "permission    blocked: blocked in the allow-list import" in out


async def test_a_hostile_file_is_refused_whole_and_a_big_one_is_sent_in_chunks(
    stack: Stack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for data, status, message in (
        (b"\xff\xfedomain,permission\n", 400, "not UTF-8"),
        (b"domain,permission,colour\nx.example.org,allow,red\n", 400, "unknown column 'colour'"),
        (b"permission\nallow\n", 400, "no 'domain' column"),
        (b"", 400, "no header row"),
        (
            b"domain,permission\n" + b"".join(b"d%d.example.org,allow\n" % n for n in range(20_001)),
            400,
            "more than 20000 rows",
        ),
        (b"domain,permission\n" + b"x" * (5 * 1024 * 1024), 413, ""),
    ):
        answer_status, answer = await request(stack, "POST", "/admin/domains/import", data=data)
        assert answer_status == status, answer
        assert message in answer["message"]

    big = tmp_path / "big.csv"
    big.write_bytes(
        b"domain,permission,max_concurrent\n" + b"".join(b"site%04d.example.org,allow,2\n" % n for n in range(1_200))
    )
    code, out, err = await ccn(capsys, "domains", "import", str(big))
    assert code == 0, err
    assert "1200 rows: 1200 accepted (1200 changed, 0 unchanged), 0 rejected" in out
    too_big = tmp_path / "too-big.csv"
    too_big.write_bytes(b"domain,permission\n" + b"#" * (4 * 1024 * 1024))
    code, out, err = await ccn(capsys, "domains", "import", str(too_big))
    assert code == 1 and "larger than 4194304 bytes" in err
    code, out, err = await ccn(capsys, "domains", "import", str(tmp_path / "missing.csv"))
    assert code == 1 and "cannot read" in err


async def test_allow_block_and_update_through_the_cli_and_the_api(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await ccn(
        capsys,
        "domains",
        "allow",
        "Grants.Example.ORG",
        "--rpm",
        "12",
        "--concurrent",
        "2",
        "--path",
        "/grants",
        "--pattern",
        "/*.pdf$",
        "--reviewer",
        "ann",
        "--reviewed-at",
        "2026-11-30T10:00:00+00:00",
    )
    assert code == 0, err
    assert "grants.example.org: allowed" in out
    assert "limits        12/min, default/hour, 2 at once" in out and "paths         /grants, /*.pdf$" in out
    code, out, err = await ccn(capsys, "domains", "allow", "grants.example.org", "--rpm", "0")
    assert code == 1 and "requests_per_minute" in err

    status, reply = await request(
        stack, "PATCH", "/admin/domains/grants.example.org", {"requests_per_hour": 100, "clear": ["allowed_paths"]}
    )
    assert status == 200 and reply["changed"], reply
    assert (
        reply["policy"]["requests_per_hour"],
        reply["policy"]["allowed_paths"],
        reply["policy"]["requests_per_minute"],
    ) == (100, [], 12)

    code, out, err = await ccn(capsys, "domains", "block", "grants.example.org", "--reason", "asked us to stop")
    assert code == 0 and "grants.example.org: blocked" in out and "asked us to stop" in out, err
    code, out, err = await ccn(capsys, "domains", "block", "grants.example.org", "--reason", "asked us to stop")
    assert code == 0 and "nothing to change" in out, err
    status, reply = await request(stack, "PATCH", "/admin/domains/grants.example.org", {"max_concurrent": 1})
    assert (status, reply["code"]) == (409, "conflict"), reply
    status, reply = await request(stack, "PATCH", "/admin/domains/unknown.example.org", {"max_concurrent": 1})
    assert status == 404, reply

    shown = await eventually_listed(capsys, "show", "grants.example.org", expect="domain.blocked")
    assert [line.split()[1] for line in shown.splitlines() if line.startswith("  20")] == [
        "domain.allowed",
        "domain.policy_updated",
        "domain.blocked",
    ]


BAD_INPUT = [
    ("POST", "/admin/domains/x.example.org/allow", {"requests_per_minute": 0}, 400, "requests_per_minute"),
    ("POST", "/admin/domains/x.example.org/allow", {"requests_per_minute": "60"}, 400, "requests_per_minute"),
    ("POST", "/admin/domains/x.example.org/allow", {"colour": "red"}, 400, "colour"),
    ("POST", "/admin/domains/x.example.org/allow", {"allowed_paths": ["grants"]}, 400, "allowed_paths[0]"),
    ("POST", "/admin/domains/x.example.org/allow", {"notes": "a\u2028b"}, 400, "notes"),
    ("POST", "/admin/domains/x.example.org/allow", {"reviewed_at": "2026-11-30T10:00:00"}, 400, "reviewed_at"),
    ("POST", "/admin/domains/127.0.0.1/allow", {}, 400, "domain"),
    ("POST", "/admin/domains/localhost/allow", {}, 400, "domain"),
    ("POST", "/admin/domains/x.example.org/block", {}, 400, "reason"),
    ("POST", "/admin/domains/x.example.org/block", {"reason": "a\nb"}, 400, "reason"),
    ("PATCH", "/admin/domains/x.example.org", {"clear": ["by"]}, 400, "clear"),
]


async def test_bad_input_is_refused_naming_the_field(stack: Stack) -> None:
    for method, path, body, status, field in BAD_INPUT:
        answer_status, answer = await request(stack, method, path, body)
        assert (answer_status, answer["field"]) == (status, field), (path, body, answer)


async def test_every_route_needs_the_admin_token(stack: Stack) -> None:
    for method, path, body in (
        ("POST", "/admin/domains/import", None),
        ("POST", "/admin/domains/x.example.org/allow", {}),
        ("POST", "/admin/domains/x.example.org/block", {"reason": "r"}),
        ("PATCH", "/admin/domains/x.example.org", {"max_concurrent": 1}),
    ):
        for token in (None, "wrong"):
            status, answer = await request(stack, method, path, body, token=token)
            assert (status, answer["code"]) == (401, "unauthorized"), (method, path, answer)
