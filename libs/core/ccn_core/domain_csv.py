"""The allow-list CSV that `ccn domains import FILE.csv` loads: bytes in, accepted rows (each a
domain-policy command) and rejected rows (each with its line and why) out. Pure; the importer
sends the accepted commands, and importing a file twice changes nothing the second time.

The file is UTF-8 (a byte-order mark is allowed), comma-separated with `"` quoting, at most
4 MiB and 20,000 rows; its first row names the columns, in any order, case and spacing aside.
An unknown or repeated column refuses the whole file, so a misspelt column cannot be silently
ignored. Columns (docs/examples/domains.csv is an example):

| column | required | meaning |
|---|---|---|
| domain | yes | the host name (`grants.example.org`); Unicode names are stored as IDNA; no IP addresses |
| permission | yes | `allow` or `block` (`allowed`, `blocked`, `deny` are read too) |
| include_subdomains | no | `true`/`false` (`yes`/`no`, `1`/`0`); empty: false |
| requests_per_minute | no | 1-600; empty: the project's default |
| requests_per_hour | no | 1-36000; empty: the project's default |
| max_concurrent | no | concurrent fetches, 1-64; empty: the project's default |
| allowed_paths | no | path prefixes separated by `;` (`/grants;/funding`); empty: every path |
| allowed_patterns | no | robots.txt-style patterns separated by `;` (`/*.pdf$`) |
| notes | no | free text; for a blocked domain, the reason |
| reviewer | no | who reviewed the domain's robots.txt and terms |
| reviewed_at | no | ISO 8601 date (`2026-11-30`, read as midnight UTC) or date-time with a UTC offset |

A row is rejected (and the others still accepted) when a value is out of its bounds, a domain
is repeated, a row has more cells than the header, or a review date is in the future.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import msgspec

from ccn_core.domain.domain_policy import (
    AllowDomain,
    BlockDomain,
    DomainPolicyDecider,
    PolicyLimits,
    canonical_domain,
    policy_id,
)
from ccn_core.errors import BadInput, CcnError

MAX_CSV_BYTES = 4 * 1024 * 1024
MAX_ROWS = 20_000
MAX_CELL_CHARS = 4096
COLUMNS = (
    "domain",
    "permission",
    "include_subdomains",
    "requests_per_minute",
    "requests_per_hour",
    "max_concurrent",
    "allowed_paths",
    "allowed_patterns",
    "notes",
    "reviewer",
    "reviewed_at",
)
REQUIRED_COLUMNS = ("domain", "permission")
DEFAULT_BLOCK_REASON = "blocked in the allow-list import"
_PERMISSIONS = {"allow": "allow", "allowed": "allow", "block": "block", "blocked": "block", "deny": "block"}
_BOOLEANS = {"": False, "false": False, "no": False, "0": False, "true": True, "yes": True, "1": True}
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")
_DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class AcceptedRow(msgspec.Struct, frozen=True):
    line: int
    domain: str
    command: AllowDomain | BlockDomain


class RejectedRow(msgspec.Struct, frozen=True):
    line: int
    reason: str
    domain: str = ""  # as the row wrote it, cut to 128 characters


class DomainImport(msgspec.Struct, frozen=True):
    accepted: list[AcceptedRow]
    rejected: list[RejectedRow]


class _RowProblem(Exception):
    pass


def parse_domain_csv(data: bytes, *, by: str, now: datetime) -> DomainImport:
    """Raises BadInput when the file as a whole cannot be read (too big, not UTF-8, no header,
    an unknown, repeated or missing column)."""
    if len(data) > MAX_CSV_BYTES:
        raise BadInput(f"the file is larger than {MAX_CSV_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BadInput(f"the file is not UTF-8 (byte {error.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    accepted: list[AcceptedRow] = []
    rejected: list[RejectedRow] = []
    header: list[str] | None = None
    first_line: dict[str, int] = {}
    decider = DomainPolicyDecider()
    rows = 0
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            rejected.append(RejectedRow(line, f"malformed CSV ({error}); the rest of the file was not read"))
            break
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = _header(cells)
            continue
        rows += 1
        if rows > MAX_ROWS:
            raise BadInput(f"the file has more than {MAX_ROWS} rows")
        domain_index = header.index("domain")
        written_domain = cells[domain_index].strip()[:128] if domain_index < len(cells) else ""
        try:
            row = _row(header, cells, line, by)
            if row.domain in first_line:
                raise _RowProblem(f"{row.domain} is repeated (first on line {first_line[row.domain]})")
            decider.decide(row.command, decider.initial_state(policy_id(row.domain)), now)
        except (_RowProblem, CcnError) as problem:
            reason = problem.message if isinstance(problem, CcnError) else str(problem)
            rejected.append(RejectedRow(line, reason, written_domain))
            continue
        first_line[row.domain] = line
        accepted.append(row)
    if header is None:
        raise BadInput("the file has no header row")
    return DomainImport(accepted, rejected)


def _header(cells: list[str]) -> list[str]:
    names = [re.sub(r"[\s-]+", "_", cell.strip().lower()) for cell in cells]
    for name in names:
        if name not in COLUMNS:
            raise BadInput(f"unknown column {name[:60]!r}; the columns are {', '.join(COLUMNS)}")
        if names.count(name) > 1:
            raise BadInput(f"column {name!r} appears more than once")
    for required in REQUIRED_COLUMNS:
        if required not in names:
            raise BadInput(f"the header has no {required!r} column")
    return names


def _row(header: list[str], cells: list[str], line: int, by: str) -> AcceptedRow:
    if len(cells) > len(header):
        raise _RowProblem(f"the row has {len(cells)} cells but the header names {len(header)}")
    for cell in cells:
        if len(cell) > MAX_CELL_CHARS:
            raise _RowProblem(f"a cell is longer than {MAX_CELL_CHARS} characters")
    values = {name: cell.strip() for name, cell in zip(header, cells, strict=False)}
    domain = canonical_domain(values.get("domain", ""))
    permission = _PERMISSIONS.get(values.get("permission", "").lower())
    if permission is None:
        raise _RowProblem(f"permission {values.get('permission', '')[:40]!r} is not allow or block")
    notes = values.get("notes") or None
    reviewer = values.get("reviewer") or None
    reviewed_at = _timestamp(values.get("reviewed_at", ""))
    if permission == "block":
        command: AllowDomain | BlockDomain = BlockDomain(
            domain=domain,
            reason=notes or DEFAULT_BLOCK_REASON,
            reviewer=reviewer,
            reviewed_at=reviewed_at,
            by=by,
        )
        return AcceptedRow(line, domain, command)
    limits = PolicyLimits(
        include_subdomains=_boolean("include_subdomains", values.get("include_subdomains", "")),
        requests_per_minute=_count("requests_per_minute", values.get("requests_per_minute", "")),
        requests_per_hour=_count("requests_per_hour", values.get("requests_per_hour", "")),
        max_concurrent=_count("max_concurrent", values.get("max_concurrent", "")),
        allowed_paths=_list(values.get("allowed_paths", "")),
        allowed_patterns=_list(values.get("allowed_patterns", "")),
        notes=notes,
        reviewer=reviewer,
        reviewed_at=reviewed_at,
    )
    return AcceptedRow(line, domain, AllowDomain(domain=domain, limits=limits, by=by))


def _count(column: str, value: str) -> int | None:
    if not value:
        return None
    if not _WHOLE_NUMBER.fullmatch(value):
        raise _RowProblem(f"{column} {value[:40]!r} is not a whole number")
    return int(value)


def _boolean(column: str, value: str) -> bool:
    found = _BOOLEANS.get(value.lower())
    if found is None:
        raise _RowProblem(f"{column} {value[:40]!r} is not true or false")
    return found


def _list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(";") if item.strip())


def _timestamp(value: str) -> datetime | None:
    if not value:
        return None
    try:
        if _DATE_ONLY.fullmatch(value):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _RowProblem(f"reviewed_at {value[:40]!r} is not an ISO 8601 date or date-time") from None
    if parsed.tzinfo is None:
        raise _RowProblem(f"reviewed_at {value[:40]!r} has no UTC offset")
    return parsed.astimezone(UTC)


def allow_list_csv(
    domains: list[str], *, per_minute: int, per_hour: int, concurrent: int, notes: str, reviewer: str
) -> bytes:
    """An allow-list file allowing each domain with the same limits (the demo's and the bench's
    local sites), in the columns `parse_domain_csv` reads."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for domain in domains:
        writer.writerow([domain, "allow", "false", per_minute, per_hour, concurrent, "", "", notes, reviewer, ""])
    return out.getvalue().encode()
