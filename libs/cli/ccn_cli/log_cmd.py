"""`ccn log --job ID | --correlation-id ID | --node ID`: a job's whole life (or a request's, or a
node's) from the orchestrator log, oldest first, read from the running stack's analytics API
(GET /admin/orchestrator-log) with the stack's admin token. Exit 0 when entries were printed,
1 when none matched or the stack could not answer."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from ccn_cli.console import fail, say, warn
from ccn_cli.stack.processes import is_alive
from ccn_cli.stack.run_state import load_state
from ccn_cli.stack.secrets_file import read_secrets_file, secrets_path
from ccn_cli.stack.settings_env import env_var
from ccn_cli.subcommand import Subparsers
from ccn_core.settings import Settings

PAGE_SIZE = 500
_TIMEOUT_S = 10.0


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "log", help="print a job's whole life (or a request's, or a node's) from the orchestrator log"
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--job", metavar="ID", help="every step of this job")
    which.add_argument("--correlation-id", metavar="ID", help="every step of every job of this request chain")
    which.add_argument("--node", metavar="ID", help="every step this node took part in")
    parser.add_argument("--since", metavar="TIME", help="only steps at or after this ISO-8601 time (with offset)")
    parser.add_argument(
        "--max", type=int, default=10_000, metavar="N", help="stop after N entries (default %(default)s)"
    )
    parser.set_defaults(run=run)


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of an orchestrator-log entry this command prints (the API sends more)."""

    occurred_at: datetime
    event: str
    job_id: str | None = None
    node_id: str | None = None
    replica: str | None = None
    attempt: int | None = None
    correlation_id: str
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class Page(msgspec.Struct, frozen=True, kw_only=True):
    entries: list[Entry]
    next_cursor: str | None
    has_more: bool


class LogUnavailable(Exception):
    """The stack could not answer; the message says why and what to do."""


_COLUMNS = ("time (UTC)", "event", "attempt", "job", "node", "replica", "correlation id", "note")


def _note(details: dict[str, Any]) -> str:
    """The one fact of a step worth a column: why it ended, or when it runs again; for a dead
    letter, the consumer that gave up, why, and the command that replays it."""
    parts = [str(details["reason"])] if details.get("reason") else []
    if details.get("retry_at"):
        parts.append(f"retry at {details['retry_at']}")
    if details.get("error"):
        where = f"{details['consumer']}: " if details.get("consumer") else ""
        parts.append(f"{where}{details.get('error_class', 'error')}: {details['error']}")
    if details.get("replay"):
        parts.append(str(details["replay"]))
    return "; ".join(parts)


def table_lines(entries: Sequence[Entry]) -> list[str]:
    """The entries as aligned text columns: ids are never wrapped or cut, so they stay copyable."""
    rows = [
        (
            entry.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            entry.event,
            "" if entry.attempt is None else str(entry.attempt),
            entry.job_id or "-",
            entry.node_id or "-",
            entry.replica or "-",
            entry.correlation_id,
            _note(entry.details),
        )
        for entry in entries
    ]
    widths = [max(len(row[i]) for row in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [_COLUMNS, *rows]
    ]


def analytics_base_url(settings: Settings) -> str:
    """The running stack's analytics service (from `ccn up`'s state), else the configured one."""
    state = load_state(settings.home)
    if state is not None:
        for record in state.processes:
            if record.name == "analytics":
                if not is_alive(record):
                    raise LogUnavailable(
                        f"the analytics service of the stack in {settings.home} is not running; see `ccn status`"
                    )
                return record.url.rstrip("/")
    return f"http://{settings.analytics_host}:{settings.analytics_port}"


def admin_token(settings: Settings) -> str:
    token = settings.admin_token or read_secrets_file(secrets_path(settings.home)).get(env_var("admin_token"), "")
    if not token:
        raise LogUnavailable(
            f"no admin token: set CCN_ADMIN_TOKEN, or start the stack with `ccn up` "
            f"(it keeps the token in {secrets_path(settings.home)})"
        )
    return token


def _error_message(body: bytes) -> str:
    try:
        decoded = json.loads(body)
    except ValueError:
        return body.decode(errors="replace")[:200]
    if isinstance(decoded, dict) and isinstance(decoded.get("message"), str):
        field = decoded.get("field")
        return f"{decoded['message']}" + (f" (field {field})" if field else "")
    return str(decoded)[:200]


def fetch_json(base_url: str, token: str, path_and_query: str) -> Any:  # a JSON document: Any is honest
    """GET an admin path of the analytics service, decoded; LogUnavailable says why it failed."""
    body, _ = fetch_admin(base_url, token, path_and_query, accept="application/json")
    return msgspec.json.decode(body)


def fetch_all_pages(
    base_url: str, token: str, path: str, items: str, params: dict[str, str], page_size: int
) -> list[dict[str, Any]]:
    """Every item of a paged admin list of the analytics service (`items` names the page's list),
    following its cursor; LogUnavailable says why it failed."""
    found: list[dict[str, Any]] = []
    params = dict(params)
    while True:
        params["limit"] = str(page_size)
        page = fetch_json(base_url, token, f"{path}?{urllib.parse.urlencode(params)}")
        found += page[items]
        if not page["has_more"] or not page["next_cursor"]:
            return found
        params["cursor"] = page["next_cursor"]


def fetch_admin(base_url: str, token: str, path_and_query: str, *, accept: str) -> tuple[bytes, dict[str, str]]:
    """GET an admin path of the analytics service: (body, response headers); LogUnavailable says
    why it failed."""
    if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
        raise LogUnavailable(f"the analytics URL {base_url!r} is not an http(s) URL")
    headers = {"Authorization": f"Bearer {token}", "Accept": accept}
    request = urllib.request.Request(f"{base_url}{path_and_query}", headers=headers)  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:  # noqa: S310 - scheme checked above
            body: bytes = response.read()
            return body, dict(response.headers.items())
    except urllib.error.HTTPError as exc:
        detail = _error_message(exc.read())
        if exc.code == 401:
            raise LogUnavailable(
                f"the analytics service at {base_url} refused the admin token: {detail}; "
                "check CCN_ADMIN_TOKEN against the stack's secrets.env"
            ) from None
        raise LogUnavailable(f"the analytics service at {base_url} answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise LogUnavailable(
            f"the analytics service is not reachable at {base_url} ({reason}); is the stack running? "
            "start it with `ccn up`"
        ) from None


def fetch_page(base_url: str, token: str, params: dict[str, str]) -> Page:
    document = fetch_json(base_url, token, f"/admin/orchestrator-log?{urllib.parse.urlencode(params)}")
    return msgspec.convert(document, type=Page)


def all_entries(base_url: str, token: str, filters: dict[str, str], at_most: int) -> Iterator[Entry]:
    """Every matching entry, oldest first, following the cursors, at most `at_most`."""
    params = dict(filters)
    taken = 0
    while True:
        params["limit"] = str(min(PAGE_SIZE, at_most - taken))
        page = fetch_page(base_url, token, params)
        yield from page.entries
        taken += len(page.entries)
        if not page.has_more or taken >= at_most or page.next_cursor is None:
            return
        params["cursor"] = page.next_cursor


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.max < 1:
        fail("--max must be at least 1")
        return 2
    filters = {
        key: value
        for key, value in (
            ("job_id", args.job),
            ("correlation_id", args.correlation_id),
            ("node_id", args.node),
            ("since", args.since),
        )
        if value
    }
    try:
        base_url = analytics_base_url(settings)
        entries = list(all_entries(base_url, admin_token(settings), filters, args.max))
    except LogUnavailable as exc:
        fail(str(exc))
        return 1
    subject = " ".join(f"{key}={value}" for key, value in filters.items())
    if not entries:
        warn(f"no orchestrator log entries for {subject} (the log may lag the events by a moment)")
        return 1
    for line in table_lines(entries):
        say(line)
    if len(entries) >= args.max:
        warn(f"stopped after {args.max} entries; raise --max or narrow with --since")
    created = [entry.correlation_id for entry in entries if entry.event == "job_created"]
    if args.job and created:
        # every step of the job is on this thread, with the other jobs the same request created
        say(f"\nthe request that created it: ccn log --correlation-id {created[0]}")
    return 0
