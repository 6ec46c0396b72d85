"""What the edge decides about a node's connection, free of I/O: whether its hello is
acceptable, which jobs it holds, how much work to ask for on its behalf, and when its bad frames
are enough to hang up. The WebSocket handler (node_socket.py) and the HTTP job endpoints act on
these decisions."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from ccn_core.errors import BadInput, CcnError, UpgradeRequired
from ccn_proto.node_protocol import MIN_NODE_VERSION, PROTOCOL_VERSION, Hello, ResultItem
from ccn_proto.scheduler import ClaimJobsReply

# node governance withholds work without saying until when (offline, draining): the node asks
# again after this
WITHHELD_RECHECK_S = 5.0

_VERSION = re.compile(r"^(\d{1,6})\.(\d{1,6})\.(\d{1,6})")


def withheld_wait_s(reply: ClaimJobsReply) -> float:
    """How long a node whose work governance withheld waits before asking again: until its
    backoff (or spent quota) ends when the reply says, else WITHHELD_RECHECK_S. One rule for the
    socket's error frame and the HTTP claim's Retry-After."""
    if reply.backoff_until is None:
        return WITHHELD_RECHECK_S
    return max(0.0, (reply.backoff_until - reply.server_time).total_seconds())


def version_tuple(version: str) -> tuple[int, int, int] | None:
    """`1.2.3`, `1.2.3rc1`, `1.2.3+local` → (1, 2, 3); None when it does not start like that."""
    match = _VERSION.match(version)
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch)


def hello_problem(hello: Hello, known_job_types: Collection[str]) -> CcnError | None:
    """Why this hello is refused, or None. Checked before the token is: a node too old to
    follow the protocol is told what to install whatever its credentials."""
    if hello.protocol_version != PROTOCOL_VERSION:
        return UpgradeRequired(
            f"protocol version {hello.protocol_version} is not spoken here (this edge speaks "
            f"{PROTOCOL_VERSION}); install ccn-node >= {MIN_NODE_VERSION}",
            field="protocol_version",
        )
    version = version_tuple(hello.node_version)
    if version is None:
        return BadInput("node_version must look like 1.2.3", field="node_version")
    if version < _MINIMUM:
        return UpgradeRequired(
            f"node version {hello.node_version} is no longer supported; install ccn-node >= {MIN_NODE_VERSION}",
            field="node_version",
        )
    unknown = sorted(set(hello.capabilities.job_types) - set(known_job_types))
    if unknown:
        return BadInput(
            f"unknown job types {', '.join(unknown)}; this edge runs {', '.join(sorted(known_job_types))}",
            field="capabilities.job_types",
        )
    if not hello.capabilities.job_types:
        return BadInput("advertise at least one job type", field="capabilities.job_types")
    if not 1 <= hello.capabilities.concurrency <= MAX_CONCURRENCY:
        return BadInput(f"concurrency must be 1..{MAX_CONCURRENCY}", field="capabilities.concurrency")
    return None


def repeated_job(results: list[ResultItem]) -> BadInput | None:
    """Why a results frame is refused as a whole: a job named twice in it (its two results
    could not both be the job's), or None."""
    seen: set[str] = set()
    for index, item in enumerate(results):
        if item.job_id in seen:
            return BadInput(f"job {item.job_id} appears twice in one results frame", field=f"results[{index}].job_id")
        seen.add(item.job_id)
    return None


def job_offers_frames(offers: list[bytes], max_bytes: int) -> list[tuple[bytes, int]]:
    """Encoded `job_offer` items → `job_offers` frames of at most `max_bytes` each, in order
    (an item bigger than that alone in its frame), each with how many offers it carries."""
    frames: list[tuple[bytes, int]] = []
    chunk: list[bytes] = []
    size = _OFFERS_FRAME_OVERHEAD
    for offer in offers:
        if chunk and size + len(offer) + 1 > max_bytes:
            frames.append((_JOB_OFFERS_HEAD + b",".join(chunk) + b"]}", len(chunk)))
            chunk, size = [], _OFFERS_FRAME_OVERHEAD
        chunk.append(offer)
        size += len(offer) + 1
    if chunk:
        frames.append((_JOB_OFFERS_HEAD + b",".join(chunk) + b"]}", len(chunk)))
    return frames


_JOB_OFFERS_HEAD = b'{"type":"job_offers","offers":['
_OFFERS_FRAME_OVERHEAD = len(_JOB_OFFERS_HEAD) + 2
MAX_CONCURRENCY = 256
_MINIMUM = version_tuple(MIN_NODE_VERSION) or (0, 0, 0)


@dataclass
class Holdings:
    """The jobs a connection holds (job id → the job's correlation id) and the work its node
    asked for. The scheduler is the truth about leases; this is what the edge checks frames
    against, so a result for a job the node was never offered is refused without a round trip.

    `wanted` is what the node last said it has room for, kept as said: the edge claims
    min(wanted, room), so a slot that frees here later (a result answered, a resumed job the
    node turned out not to run) is filled without the node asking again."""

    concurrency: int
    held: dict[str, str] = field(default_factory=dict)
    wanted: int = 0
    # jobs held before this connection (the scheduler's word at hello) that the node has not
    # named in a heartbeat since: a node that restarted does not run them any more
    unconfirmed: set[str] = field(default_factory=set)
    # each job's attempt, as offered: what the node's signature over its result must name
    attempts: dict[str, int] = field(default_factory=dict)
    # resumed jobs a heartbeat left out: they no longer take room, but a result or failure for
    # one is still passed on (it may have finished while the node was away); the scheduler,
    # which holds the lease, judges it
    let_go: dict[str, str] = field(default_factory=dict)

    def ask(self, slots: int) -> None:
        """The node has room for `slots` more."""
        self.wanted = max(0, slots)

    @property
    def room(self) -> int:
        return max(0, self.concurrency - len(self.held))

    def to_claim(self) -> int:
        return min(self.wanted, self.room)

    def offered(self, job_id: str, correlation_id: str, attempt: int | None = None) -> None:
        self.held[job_id] = correlation_id
        self.wanted = max(0, self.wanted - 1)
        if attempt is not None:
            self.attempts[job_id] = attempt

    def resumed(self, job_id: str, correlation_id: str, attempt: int | None = None) -> None:
        """A job the node held before this connection (it may still be running it)."""
        self.held[job_id] = correlation_id
        self.unconfirmed.add(job_id)
        if attempt is not None:
            self.attempts[job_id] = attempt

    def release(self, job_id: str) -> None:
        self.held.pop(job_id, None)
        self.unconfirmed.discard(job_id)
        self.let_go.pop(job_id, None)
        self.attempts.pop(job_id, None)

    def attempt_of(self, job_id: str) -> int | None:
        return self.attempts.get(job_id)

    def holding(self, job_ids: Iterable[str]) -> list[str]:
        return [job_id for job_id in job_ids if job_id in self.held]

    def correlation_of(self, job_id: str) -> str | None:
        """The job's correlation id if a result or failure for it may come from this node."""
        return self.held.get(job_id) or self.let_go.get(job_id)

    def confirm(self, running: Iterable[str]) -> list[str]:
        """A heartbeat names every job the node runs: resumed jobs it names are confirmed, and
        those it leaves out are let go (returned), as the node no longer runs them."""
        named = set(running)
        gone = sorted(self.unconfirmed - named)
        for job_id in gone:
            self.let_go[job_id] = self.held.pop(job_id)
        self.unconfirmed.clear()
        return gone


@dataclass
class BadFrameBudget:
    """Bad frames are answered one by one; past `limit` in a row-window the sender is not a
    confused node but a broken or hostile one, and the connection is closed."""

    limit: int = 20
    spent: int = 0

    def spend(self) -> bool:
        """Count one bad frame; True when the budget is exhausted."""
        self.spent += 1
        return self.spent > self.limit

    def refund(self) -> None:
        """A good frame halves what was spent: an occasional mistake never adds up to a close."""
        self.spent //= 2
