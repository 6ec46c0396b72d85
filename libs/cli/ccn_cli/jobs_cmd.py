"""`ccn jobs submit|status|result|cancel|tail`: the operators' job API of the running stack's
edge (/jobs), called with the stack's admin token.

A batch file is checked whole before anything is sent: every line as the edge and the scheduler
will check it (its JSON, its job type, its payload against the type's schema, its encoded size,
its item key unique in the file), and bad lines are reported by number, so a refused file
creates nothing. Then it is sent in chunks, one POST /jobs/batch each, all under one batch id.
Every line carries an item key (its own, else `line-<line number in the file>`, the key the edge
itself would give it), and a job's id derives from (batch id, item key): so a chunk retried
after a failure (the stack unavailable part way), or the whole command run again, creates
nothing twice."""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ccn_cli import train_classifier_cmd
from ccn_cli.console import err, fail, say, warn
from ccn_cli.stack.processes import is_alive
from ccn_cli.stack.run_state import load_state
from ccn_cli.stack.secrets_file import read_secrets_file, secrets_path
from ccn_cli.stack.settings_env import env_var
from ccn_cli.subcommand import Subparsers
from ccn_core.errors import BadInput
from ccn_core.settings import Settings
from ccn_core.untrusted import decode_untrusted, untrusted_decoder
from ccn_jobs.registry import batch_job_refusal
from ccn_proto.compute_api import BatchLine, BatchSubmitted, JobResultView, SubmitJobRequest, batch_item_key, batch_job
from ccn_proto.scheduler import MAX_BATCH_JOBS, CancelJobReply, CreateJobReply, JobHistoryEntry, JobView

T = TypeVar("T")
FINAL_STATES = frozenset({"completed", "dead", "cancelled"})
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
SCHEDULER_COMMAND_BYTES = 384 * 1024
MAX_REPORTED_LINES = 20  # bad lines listed before the check only counts the rest
_LINE_PREFIX = re.compile(r"^line (\d+)")


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("jobs", help="submit jobs to the running stack and follow them")
    actions = parser.add_subparsers(dest="jobs_action", required=True, metavar="ACTION")

    submit = actions.add_parser(
        "submit",
        help="submit a JSON-lines file as a batch, or one job with --type and --payload",
        description="FILE.jsonl holds one job per line: {job_type, payload, item_key?, priority?, max_retries?, "
        "lease_s?}. Running the same command again after any failure creates nothing twice.",
    )
    submit.add_argument("file", nargs="?", type=Path, metavar="FILE.jsonl", help="a batch, one job per line")
    submit.add_argument("--batch-id", metavar="ID", help="names the batch (required with FILE)")
    submit.add_argument("--dataset-source", metavar="S", help="where the batch's data came from")
    submit.add_argument("--dataset-version", metavar="V", help="which version of that data")
    submit.add_argument(
        "--chunk-size", type=int, default=500, metavar="N", help="lines per request (default %(default)s)"
    )
    submit.add_argument("--type", dest="job_type", metavar="T", help="one job of this type (instead of FILE)")
    submit.add_argument("--payload", metavar="JSON", help="its payload: a JSON object, or @path to a file holding one")
    submit.add_argument("--priority", type=int, default=0, help="-100..100 (default %(default)s)")
    submit.add_argument("--max-retries", type=int, default=3, help="(default %(default)s)")
    submit.add_argument("--lease-s", type=float, default=60.0, help="lease duration in seconds (default %(default)s)")
    submit.add_argument("--idempotency-key", metavar="KEY", help="retry an earlier submit under its key")
    submit.add_argument("--retries", type=int, default=5, metavar="N", help="retries of a failed request (default 5)")
    submit.set_defaults(run=run_submit)

    status = actions.add_parser("status", help="a job's state and history")
    status.add_argument("job_id", metavar="ID")
    status.set_defaults(run=run_status)

    result = actions.add_parser("result", help="a completed job's result, as JSON on stdout")
    result.add_argument("job_id", metavar="ID")
    result.set_defaults(run=run_result)

    cancel = actions.add_parser("cancel", help="cancel a job")
    cancel.add_argument("job_id", metavar="ID")
    cancel.add_argument("--reason", metavar="R", help="why, kept in the job's history")
    cancel.set_defaults(run=run_cancel)

    tail = actions.add_parser("tail", help="print a job's history as it happens, until it ends (or Ctrl-C)")
    tail.add_argument("job_id", metavar="ID")
    tail.add_argument("--interval", type=float, default=1.0, metavar="S", help="seconds between polls (default 1)")
    tail.set_defaults(run=run_tail)

    train_classifier_cmd.register(actions)


class EdgeError(Exception):
    """The edge refused a request or could not be reached; the message says why and what to do."""

    def __init__(self, message: str, *, status: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in RETRYABLE_STATUSES


@dataclass(frozen=True)
class EdgeClient:
    base_url: str
    token: str
    home: Path
    timeout_s: float = 30.0

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> bytes:
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in edge_client
            f"{self.base_url}{path}",
            data=body,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                answer: bytes = response.read()
                return answer
        except urllib.error.HTTPError as exc:
            raise self._refused(exc.code, exc.read()) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise EdgeError(
                f"the edge is not reachable at {self.base_url} ({reason}); is the stack running? start it with `ccn up`"
            ) from None

    def check_reachable(self) -> None:
        """Fails at once when nothing answers, rather than after every retry: the stack is down."""
        try:
            self.call("GET", "/readyz")
        except EdgeError as exc:
            if exc.status is None:
                raise

    def get(self, path: str, into: type[T]) -> T:
        return msgspec.json.decode(self.call("GET", path), type=into)

    def post(self, path: str, body: bytes, into: type[T], headers: dict[str, str] | None = None) -> T:
        headers = {"Content-Type": "application/json", **(headers or {})}
        return msgspec.json.decode(self.call("POST", path, body, headers), type=into)

    def _refused(self, status: int, body: bytes) -> EdgeError:
        message, field = _error_detail(body)
        if status == 401:
            return EdgeError(
                f"the edge at {self.base_url} refused the admin token ({message}); check CCN_ADMIN_TOKEN "
                f"against the stack's {secrets_path(self.home)}",
                status=status,
            )
        return EdgeError(message, status=status, field=field)


def _error_detail(body: bytes) -> tuple[str, str | None]:
    try:
        decoded = json.loads(body)
    except ValueError:
        return body.decode(errors="replace")[:300] or "no detail", None
    if isinstance(decoded, dict) and isinstance(decoded.get("message"), str):
        field = decoded.get("field")
        return decoded["message"], field if isinstance(field, str) else None
    return str(decoded)[:300], None


def edge_client(settings: Settings) -> EdgeClient:
    """The running stack's edge (from `ccn up`'s state), else the configured one."""
    base_url = f"http://{settings.edge_host}:{settings.edge_port}"
    if settings.edge_host in ("", "0.0.0.0", "::"):  # a wildcard bind is reached on loopback
        base_url = f"http://127.0.0.1:{settings.edge_port}"
    state = load_state(settings.home)
    for record in state.processes if state is not None else []:
        if record.name == "edge":
            if not is_alive(record):
                raise EdgeError(f"the edge of the stack in {settings.home} is not running; see `ccn status`")
            base_url = record.url.rstrip("/")
    if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
        raise EdgeError(f"the edge URL {base_url!r} is not an http(s) URL")
    token = settings.admin_token or read_secrets_file(secrets_path(settings.home)).get(env_var("admin_token"), "")
    if not token:
        raise EdgeError(
            f"no admin token: set CCN_ADMIN_TOKEN, or start the stack with `ccn up` "
            f"(it keeps the token in {secrets_path(settings.home)})"
        )
    return EdgeClient(base_url, token, settings.home)


def with_retries(attempt: Callable[[], T], retries: int, what: str) -> T:
    """`attempt()`, retried with exponential backoff and jitter while it fails in a way a retry may
    cure (unreachable, 5xx, 429); the requests retried here are idempotent."""
    for failures in range(retries + 1):
        try:
            return attempt()
        except EdgeError as exc:
            if not exc.retryable or failures == retries:
                raise
            delay = min(30.0, 0.5 * 2**failures) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter
            warn(f"{what} failed ({exc.message}); retry {failures + 1} of {retries} in {delay:.1f} s")
            time.sleep(delay)
    raise AssertionError("unreachable")


def guarded(handler: Callable[[argparse.Namespace, EdgeClient], int]) -> Callable[[argparse.Namespace, Settings], int]:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        try:
            return handler(args, edge_client(settings))
        except EdgeError as exc:
            fail(exc.message if exc.field is None else f"{exc.message} (field {exc.field})")
            return 1

    return run


# --- submit -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    body: bytes
    line_numbers: list[int]  # the file's line number of each line of the body
    last_line: int  # counting blank lines, for the progress bar


class BadLine(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def file_chunks(path: Path, size: int) -> Iterator[Chunk]:
    """The file's non-blank lines, `size` a chunk, each with an explicit item key."""
    lines: list[bytes] = []
    numbers: list[int] = []
    last = 0
    with path.open("rb") as handle:
        for last, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line:
                continue
            lines.append(keyed_line(line, last))
            numbers.append(last)
            if len(lines) == size:
                yield Chunk(b"\n".join(lines), numbers, last)
                lines, numbers = [], []
    if lines or last:
        yield Chunk(b"\n".join(lines), numbers, last)


def keyed_line(line: bytes, number: int) -> bytes:
    """The line with `item_key` set (check_file has made sure the keys are unique in the whole
    file, not only in one chunk). A line that is not a JSON object goes as it is: the edge says
    what is wrong with it."""
    try:
        decoded: Any = msgspec.json.decode(line)
    except msgspec.DecodeError:
        return line
    if not isinstance(decoded, dict) or decoded.get("item_key") is not None:
        return line
    decoded["item_key"] = batch_item_key(number)
    return msgspec.json.encode(decoded)


@dataclass
class FileCheck:
    lines: int = 0  # every line, blank ones too, for the progress bar
    jobs: int = 0
    bad_lines: int = 0
    problems: list[str] = field(default_factory=list)  # the first MAX_REPORTED_LINES, "LINE: why"


_batch_line_decoder = untrusted_decoder(BatchLine)


def check_file(path: Path) -> FileCheck:
    """Every line of the file as the edge and the scheduler will check it, without sending any:
    a file with a bad line is refused whole, before its first request."""
    check = FileCheck()
    seen: dict[str, int] = {}
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            check.lines = number
            line = raw.strip()
            if not line:
                continue
            check.jobs += 1
            problem = line_problem(line, number, seen)
            if problem is not None:
                check.bad_lines += 1
                if len(check.problems) < MAX_REPORTED_LINES:
                    check.problems.append(f"{number}: {problem}")
    return check


def line_problem(line: bytes, number: int, seen: dict[str, int]) -> str | None:
    """What the edge would refuse this line for, or None; `seen` gathers the file's item keys."""
    try:
        item = decode_untrusted(line, _batch_line_decoder)
    except BadInput as exc:  # what the edge's parse_batch says, by the same decoder
        return exc.message + (f" (field {exc.field})" if exc.field else "")
    job = batch_job(item, number)
    key = item.item_key or batch_item_key(number)
    if key in seen:
        return f"item_key {key!r} is also the key of line {seen[key]}"
    seen[key] = number
    refusal = batch_job_refusal(job)
    if refusal is None:
        return None
    return refusal.message + (f" (field {refusal.field})" if refusal.field else "")


@dataclass
class Tally:
    jobs: int = 0
    created: int = 0
    existing: int = 0
    requests: int = 0
    first_job_id: str | None = None

    def add(self, reply: BatchSubmitted) -> None:
        self.jobs += reply.jobs
        self.created += reply.created
        self.existing += reply.existing
        self.requests += 1
        self.first_job_id = self.first_job_id or next(iter(reply.job_ids), None)

    def summary(self, batch_id: str) -> str:
        return (
            f"batch {batch_id}: {self.jobs} jobs in {self.requests} requests: "
            f"{self.created} created, {self.existing} existing"
        )


def run_submit(args: argparse.Namespace, settings: Settings) -> int:
    if args.retries < 0:
        fail("--retries must be 0 or more")
        return 2
    if args.file is not None:
        if args.job_type or args.payload:
            fail("give either FILE or --type/--payload, not both")
            return 2
        if not args.batch_id:
            fail("a batch needs --batch-id: it is what makes a resend create nothing twice")
            return 2
        if not 1 <= args.chunk_size <= 10_000:
            fail("--chunk-size must be between 1 and 10000")
            return 2
        return guarded(submit_batch)(args, settings)
    if not (args.job_type and args.payload):
        fail("give FILE.jsonl --batch-id ID, or --type T --payload JSON")
        return 2
    return guarded(submit_one)(args, settings)


def submit_batch(args: argparse.Namespace, edge: EdgeClient) -> int:
    path: Path = args.file
    try:
        check = check_file(path)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
        return 1
    if check.bad_lines:
        for problem in check.problems:
            err.print(f"{path}:{problem}", markup=False)
        more = check.bad_lines - len(check.problems)
        fail(
            f"{path}: {check.bad_lines} of {check.jobs} lines would be refused"
            + (f" ({more} more not listed)" if more else "")
            + "; nothing was sent: fix them and run the same command again"
        )
        return 1
    if not check.jobs:
        fail(f"{path} holds no jobs: one JSON object per line")
        return 1
    total = check.lines
    query = {"batch_id": args.batch_id}
    query |= {
        k: v for k, v in (("dataset_source", args.dataset_source), ("dataset_version", args.dataset_version)) if v
    }
    tally = Tally()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("lines"))
    progress = Progress(*columns, TimeElapsedColumn(), TimeRemainingColumn(), console=err)
    edge.check_reachable()
    try:
        with progress:
            task = progress.add_task(f"batch {args.batch_id}", total=total)
            for chunk in file_chunks(path, args.chunk_size):
                if chunk.line_numbers:
                    tally.add(send_chunk(edge, query, chunk, args.retries))
                progress.update(task, completed=chunk.last_line)
    except BadLine as exc:
        return _stopped(tally, args.batch_id, f"{path}:{exc.line}: {exc.message}")
    except EdgeError as exc:
        return _stopped(
            tally, args.batch_id, exc.message if exc.field is None else f"{exc.message} (field {exc.field})"
        )
    except KeyboardInterrupt:
        _stopped(tally, args.batch_id, "interrupted")
        return 130
    if not tally.jobs:
        fail(f"{path} holds no jobs: one JSON object per line")
        return 1
    say(tally.summary(args.batch_id))
    say(f"follow one: ccn jobs tail {tally.first_job_id}")
    return 0


def scheduler_chunk_size(chunk: Chunk) -> int:
    """How many jobs the edge puts in one scheduler command: few enough that the command stays
    well under NATS's 1 MiB message limit (the edge counts jobs, not bytes)."""
    per_command = len(chunk.line_numbers) * SCHEDULER_COMMAND_BYTES // max(1, len(chunk.body))
    return max(1, min(len(chunk.line_numbers), MAX_BATCH_JOBS, per_command))


def send_chunk(edge: EdgeClient, query: dict[str, str], chunk: Chunk, retries: int) -> BatchSubmitted:
    """One POST /jobs/batch, retried while a retry may help; a refused line → BadLine with the
    file's line number (the edge numbers the chunk's lines)."""
    url = f"/jobs/batch?{urllib.parse.urlencode({**query, 'chunk_size': scheduler_chunk_size(chunk)})}"
    headers = {"Content-Type": "application/x-ndjson"}
    where = f"lines {chunk.line_numbers[0]}-{chunk.line_numbers[-1]}"
    try:
        return with_retries(lambda: edge.post(url, chunk.body, BatchSubmitted, headers=headers), retries, where)
    except EdgeError as exc:
        match = _LINE_PREFIX.match(exc.field or "") or _LINE_PREFIX.match(exc.message)
        if exc.status != 400 or match is None or not 1 <= int(match[1]) <= len(chunk.line_numbers):
            raise
        line = chunk.line_numbers[int(match[1]) - 1]
        detail = _LINE_PREFIX.sub("", exc.message).lstrip(": ")
        inner = _LINE_PREFIX.sub("", exc.field or "").lstrip(": ")
        raise BadLine(line, detail + (f" (field {inner})" if inner else "")) from None


def _stopped(tally: Tally, batch_id: str, why: str) -> int:
    fail(why)
    say(f"stopped; sent before that: {tally.summary(batch_id)}")
    say("fix what is wrong and run the same command again: what was sent is not created twice")
    return 1


def submit_one(args: argparse.Namespace, edge: EdgeClient) -> int:
    try:
        payload = json.loads(Path(args.payload[1:]).read_text() if args.payload.startswith("@") else args.payload)
    except (OSError, ValueError) as exc:
        fail(f"--payload is not a readable JSON object: {exc}")
        return 2
    if not isinstance(payload, dict):
        fail("--payload must be a JSON object")
        return 2
    request = SubmitJobRequest(
        job_type=args.job_type,
        payload=payload,
        priority=args.priority,
        max_retries=args.max_retries,
        lease_s=args.lease_s,
        batch_id=args.batch_id,
        dataset_source=args.dataset_source,
        dataset_version=args.dataset_version,
    )
    key = args.idempotency_key or uuid.uuid4().hex
    say(f"Idempotency-Key: {key}  (to retry safely: --idempotency-key {key})")
    body = msgspec.json.encode(request)
    edge.check_reachable()
    reply = with_retries(
        lambda: edge.post("/jobs", body, CreateJobReply, headers={"Idempotency-Key": key}), args.retries, "submit"
    )
    how = "created" if reply.created else "already created under this key"
    say(f"job {reply.job_id} ({reply.job_type}): {reply.status}, {how}")
    return 0


# --- status, result, cancel, tail ---------------------------------------------------------------


def job_path(job_id: str) -> str:
    return f"/jobs/{urllib.parse.quote(job_id, safe='')}"


_HISTORY_COLUMNS = ("time (UTC)", "event", "attempt", "node", "correlation id", "reason")


def history_row(entry: JobHistoryEntry) -> tuple[str, ...]:
    return (
        entry.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
        entry.type,
        "" if entry.attempt is None else str(entry.attempt),
        entry.node_id or "-",
        entry.correlation_id,
        entry.reason or "",
    )


_TAIL_WIDTHS = (23, 14, 2, 36, 36, 0)  # the widths history_row's cells usually have


def tail_line(entry: JobHistoryEntry) -> str:
    """One entry, in columns wide enough for the usual values, so lines printed apart still align."""
    cells = zip(history_row(entry), _TAIL_WIDTHS, strict=True)
    return "  ".join(cell.ljust(width) for cell, width in cells).rstrip()


def aligned(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Rows as text columns: ids are never wrapped or cut, so they stay copyable."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def job_facts(view: JobView) -> list[tuple[str, str]]:
    facts = [
        ("job", view.job_id),
        ("type", view.job_type),
        ("status", view.status),
        ("attempt", f"{view.attempt} (at most {view.max_retries} retries)"),
        ("priority", str(view.priority)),
    ]
    if view.holder:
        until = view.lease_until.isoformat() if view.lease_until else "-"
        facts.append(("held by", f"{view.holder} (lease until {until})"))
    if view.retry_at:
        facts.append(("retry at", view.retry_at.isoformat()))
    if view.batch_id:
        dataset = " ".join(filter(None, (view.dataset_source, view.dataset_version)))
        facts.append(("batch", view.batch_id + (f" (dataset {dataset})" if dataset else "")))
    if view.result_checksum:
        facts.append(("result", f"sha256 {view.result_checksum}: ccn jobs result {view.job_id}"))
    return facts


def status(args: argparse.Namespace, edge: EdgeClient) -> int:
    view = edge.get(job_path(args.job_id), JobView)
    for name, value in job_facts(view):
        say(f"{name + ':':<10}{value}")
    say("")
    for line in aligned([_HISTORY_COLUMNS, *map(history_row, view.history)]):
        say(line)
    return 0


def result(args: argparse.Namespace, edge: EdgeClient) -> int:
    try:
        view = edge.get(f"{job_path(args.job_id)}/result", JobResultView)
    except EdgeError as exc:
        if exc.status == 409:
            raise EdgeError(f"{exc.message}; follow it with `ccn jobs tail {args.job_id}`", status=409) from None
        raise
    # plain stdout, not rich: this is data for jq and the like
    sys.stdout.write(json.dumps(view.result, indent=2, ensure_ascii=False) + "\n")
    return 0


def cancel(args: argparse.Namespace, edge: EdgeClient) -> int:
    body = json.dumps({"reason": args.reason} if args.reason else {}).encode()
    reply = edge.post(f"{job_path(args.job_id)}/cancel", body, CancelJobReply)
    say(f"job {reply.job_id}: {reply.status}")
    return 0


def tail(args: argparse.Namespace, edge: EdgeClient) -> int:
    """New history entries as they appear; exit 0 when the job completes, 1 when it ends otherwise."""
    printed: set[str] = set()
    edge.check_reachable()
    while True:
        view = with_retries(lambda: edge.get(job_path(args.job_id), JobView), 5, "polling the job")
        fresh = [entry for entry in view.history if entry.event_id not in printed]
        for entry in fresh:
            say(tail_line(entry))
            printed.add(entry.event_id)
        if view.status in FINAL_STATES:
            say(f"job {view.job_id} is {view.status}")
            return 0 if view.status == "completed" else 1
        time.sleep(max(0.05, args.interval))


run_status = guarded(status)
run_result = guarded(result)
run_cancel = guarded(cancel)
run_tail = guarded(tail)
