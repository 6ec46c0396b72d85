"""The edge's rate limits: which limits a node's request meets, the refusal it gets, and the
report of its refusals to the registry (docs/adr/0017-shared-rate-limits-in-nats-kv.md).

A request is checked against its node's limit for what it does (an HTTP endpoint, a WebSocket
frame type), then, for an ask for work, the limit of each job type it names, then the global
limit: the first refusal answers it (429 with Retry-After, or an error frame `rate_limited`
with `retry_after`). Every limit is shared by all edge replicas (ccn_core.shared_limiter).

Only a refusal by the node's own limit is the node's violation: the job-type and global limits
refuse on behalf of everyone. Violations are counted here per node per window and sent as one
`record_rate_limited` command per node per window, so a flood makes one event a window (per
edge replica), never one per request.

The limits come from the `rate_limits` key of the config bucket, watched: an admin's change
applies at once on every edge; until the key is first read (or if it is absent), the defaults
in code apply.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from ccn_core.commands import CommandClient
from ccn_core.errors import BadInput, CcnError, Conflict, RateLimited, Unavailable, Unprocessable
from ccn_core.ids import new_correlation_id
from ccn_core.logging import get_logger
from ccn_core.rate_limit_config import (
    CONFIG_BUCKET,
    DEFAULT_RATE_LIMITS,
    RATE_LIMITS_KEY,
    Action,
    LimitRule,
    RateLimits,
    encode_rate_limits,
    parse_rate_limits,
)
from ccn_core.shared_limiter import KV_TIMEOUT_S, SharedLimiter
from ccn_core.stopping import Stopped, unless_stopping
from ccn_core.topology import RATE_LIMIT_STATE
from ccn_proto.registry import NodeActionReply, RecordRateLimited

log = get_logger("ccn.edge.limits")

VIOLATION_WINDOW_S = 10.0
# nodes whose refusals one window holds; past it, refusals are counted in all but not per node
MAX_NODES_PER_WINDOW = 10_000
# a new edge waits this long for the stored limits before it applies the defaults
CONFIG_WAIT_S = 2.0
REPORTS_IN_FLIGHT = 32
_MAX_REPLICA_CHARS = 48  # the report key (replica:window:node) must fit a ShortText


def window_start(now: datetime, window_s: float) -> datetime:
    epoch = now.timestamp()
    return datetime.fromtimestamp(epoch - epoch % window_s, UTC)


@dataclass
class Violations:
    """Refusals by nodes' own limits, per window of `window_s` (aligned on the epoch, so every
    replica's windows are the same), per node, per limit. Bounded: a window holds at most
    `max_nodes` nodes; refusals of more are counted in `uncounted` only."""

    replica: str
    window_s: float = VIOLATION_WINDOW_S
    max_nodes: int = MAX_NODES_PER_WINDOW
    windows: dict[datetime, dict[str, Counter[str]]] = field(default_factory=dict)
    uncounted: int = 0

    def count(self, node_id: str, limit: str, now: datetime) -> None:
        nodes = self.windows.setdefault(window_start(now, self.window_s), {})
        refused = nodes.get(node_id)
        if refused is None:
            if len(nodes) >= self.max_nodes:
                self.uncounted += 1
                return
            refused = nodes[node_id] = Counter()
        refused[limit] += 1

    def finished(self, now: datetime, *, all_windows: bool = False) -> list[RecordRateLimited]:
        """The reports of every window that has ended (every window, when stopping), removed."""
        current = window_start(now, self.window_s)
        reports: list[RecordRateLimited] = []
        for start in sorted(self.windows):
            if start >= current and not all_windows:
                continue
            end = start + timedelta(seconds=self.window_s)
            for node_id, refused in self.windows.pop(start).items():
                reports.append(
                    RecordRateLimited(
                        node_id=node_id,
                        window_start=start,
                        window_end=end,
                        refused={limit: min(count, 2**31 - 1) for limit, count in sorted(refused.items())},
                        key=f"{self.replica[:_MAX_REPLICA_CHARS]}:{int(start.timestamp())}:{node_id}",
                    )
                )
        return reports


def rule_tag(rule: LimitRule) -> str:
    """A rule's part of its keys: the TAT means something only under the rule that made it, so
    a changed rule starts from fresh keys (each subject gets its burst again) rather than
    reading an arrival time counted in another rule's intervals."""
    return f"r{rule.rate}p{round(rule.period_s * 1000)}b{rule.burst}"


def node_key(action: str, rule: LimitRule, node_id: str) -> str:
    return f"node.{action.replace('.', '_')}.{rule_tag(rule)}.{node_id}"


class EdgeLimits:
    """What one edge replica enforces. Without a JetStream context it enforces nothing (an edge
    built for a test of something else)."""

    def __init__(
        self,
        js: JetStreamContext | None,
        violations: Violations,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._js = js
        self.violations = violations
        self._clock = clock
        self.config: RateLimits = DEFAULT_RATE_LIMITS
        self.config_revision = 0  # of the stored key applied; 0: the defaults
        self.config_loaded = asyncio.Event()
        self._limiter: SharedLimiter | None = None
        self._opening = asyncio.Lock()

    def apply(self, config: RateLimits, revision: int) -> None:
        self.config = config
        self.config_revision = revision
        if self._limiter is not None:
            self._limiter.forget()
        self.config_loaded.set()

    async def limiter(self) -> SharedLimiter:
        if self._limiter is None:
            assert self._js is not None
            async with self._opening:
                if self._limiter is None:
                    self._limiter = SharedLimiter(await _bucket(self._js, RATE_LIMIT_STATE.bucket))
        return self._limiter

    async def check(self, node_id: str, action: Action, *, cost: int = 1, job_types: Sequence[str] = ()) -> None:
        """Pass, or raise RateLimited (Unavailable when the shared state cannot be reached)."""
        if self._js is None:
            return
        if not self.config_loaded.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CONFIG_WAIT_S):
                    await self.config_loaded.wait()
        config = self.config
        if not config.enabled:
            return
        limiter = await self.limiter()
        rule = config.per_node.get(action)
        if rule is not None:
            decision = await limiter.take(node_key(action, rule, node_id), rule, min(cost, rule.burst))
            if not decision.allowed:
                self.violations.count(node_id, action, self._clock())
                raise RateLimited(
                    f"{action}: this node is over its limit of {_rate(rule)}", retry_after=decision.retry_after_s
                )
        for job_type in sorted(set(job_types)):
            rule = config.per_job_type.get(job_type)
            if rule is None:
                continue
            decision = await limiter.take(f"type.{job_type}.{rule_tag(rule)}", rule, 1)
            if not decision.allowed:
                raise RateLimited(
                    f"asks for {job_type} work from all nodes are over their limit of {_rate(rule)}",
                    retry_after=decision.retry_after_s,
                )
        if config.global_ is not None:
            decision = await limiter.take(
                f"global.{rule_tag(config.global_)}", config.global_, min(cost, config.global_.burst)
            )
            if not decision.allowed:
                raise RateLimited(
                    f"requests from all nodes are over their limit of {_rate(config.global_)}",
                    retry_after=decision.retry_after_s,
                )

    async def stored_config(self) -> tuple[RateLimits, int]:
        """The limits in the config bucket and their revision; the defaults and 0 when none are."""
        bucket = await self._config_bucket()
        try:
            async with asyncio.timeout(KV_TIMEOUT_S):
                entry = await bucket.get(RATE_LIMITS_KEY)
        except KeyNotFoundError:
            return DEFAULT_RATE_LIMITS, 0
        except (TimeoutError, NatsError) as exc:
            raise Unavailable(f"the rate limits cannot be read now: {type(exc).__name__}", retry_after=1.0) from exc
        try:
            return parse_rate_limits(entry.value or b""), entry.revision or 0
        except BadInput as exc:  # written past the admin API: the edges keep what they enforce
            raise Unprocessable(
                f"the stored rate limits (revision {entry.revision}) do not pass the checks: {exc.message}; "
                "PUT valid ones (the edges enforce the last valid limits meanwhile)",
                field=exc.field,
            ) from None

    async def store_config(self, config: RateLimits, *, revision: int | None = None) -> int:
        """Store new limits (every edge applies them as it sees them); with `revision`, only if
        the stored limits are still those (Conflict otherwise). Returns the new revision."""
        bucket = await self._config_bucket()
        value = encode_rate_limits(config)
        try:
            async with asyncio.timeout(KV_TIMEOUT_S):
                if revision is None:
                    return await bucket.put(RATE_LIMITS_KEY, value)
                if revision == 0:
                    return await bucket.create(RATE_LIMITS_KEY, value)
                return await bucket.update(RATE_LIMITS_KEY, value, last=revision)
        except KeyWrongLastSequenceError:
            raise Conflict(
                f"the rate limits are no longer at revision {revision}: read them again", field="revision"
            ) from None
        except (TimeoutError, NatsError) as exc:
            raise Unavailable(f"the rate limits cannot be stored now: {type(exc).__name__}", retry_after=1.0) from exc

    async def _config_bucket(self) -> KeyValue:
        if self._js is None:
            raise Unavailable("this edge has no configuration store")
        return await config_bucket(self._js)


def _rate(rule: LimitRule) -> str:
    return f"{rule.rate} per {rule.period_s:g} s (burst {rule.burst})"


async def _bucket(js: JetStreamContext, name: str) -> KeyValue:
    try:
        return await js.key_value(name)
    except BucketNotFoundError as exc:
        raise Unavailable(f"key-value bucket {name} is missing: apply the topology", retry_after=5.0) from exc
    except (TimeoutError, NatsError) as exc:
        raise Unavailable(f"key-value bucket {name} cannot be opened: {type(exc).__name__}", retry_after=1.0) from exc


async def config_bucket(js: JetStreamContext) -> KeyValue:
    return await _bucket(js, CONFIG_BUCKET)


async def watch_limits_config(js: JetStreamContext, limits: EdgeLimits, stopping: asyncio.Event) -> None:
    """Apply every value the `rate_limits` key takes until `stopping`; a value that does not
    pass the checks (written past the admin API) is logged and the limits in force are kept."""
    bucket = await config_bucket(js)
    watcher = await bucket.watch(RATE_LIMITS_KEY)
    try:
        while True:
            try:
                entry = await unless_stopping(watcher.updates(timeout=None), stopping)  # type: ignore[no-untyped-call]
            except Stopped:
                return
            if entry is None:  # the initial values are all delivered: the key is absent
                if not limits.config_loaded.is_set():
                    limits.apply(DEFAULT_RATE_LIMITS, 0)
                continue
            if entry.operation is not None or not entry.value:  # deleted or purged: the defaults
                limits.apply(DEFAULT_RATE_LIMITS, 0)
                log.info("rate limits reset to the defaults")
                continue
            try:
                config = parse_rate_limits(entry.value)
            except BadInput as exc:
                log.error("stored rate limits refused; the limits in force are kept", reason=exc.message)
                limits.config_loaded.set()
                continue
            limits.apply(config, entry.revision or 0)
            log.info("rate limits applied", revision=entry.revision)
    finally:
        with contextlib.suppress(NatsError):
            await watcher.stop()  # type: ignore[no-untyped-call]


async def report_violations(
    commands: CommandClient,
    violations: Violations,
    stopping: asyncio.Event,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Send each finished window's refusals to the registry, one command per node; on stop,
    what the current window holds too. A report the registry cannot take is logged and dropped:
    the refusals themselves were already answered."""
    while not stopping.is_set():
        now = clock()
        next_window = window_start(now, violations.window_s) + timedelta(seconds=violations.window_s)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.05, (next_window - now).total_seconds() + 0.05)):
                await stopping.wait()
        await send_reports(commands, violations.finished(clock(), all_windows=stopping.is_set()))
        if violations.uncounted:
            log.warning("rate-limit refusals beyond the nodes a window holds", refused=violations.uncounted)
            violations.uncounted = 0


async def send_reports(commands: CommandClient, reports: list[RecordRateLimited]) -> None:
    for start in range(0, len(reports), REPORTS_IN_FLIGHT):
        batch = reports[start : start + REPORTS_IN_FLIGHT]
        outcomes = await asyncio.gather(
            *(
                commands.call(
                    "registry", "record_rate_limited", report, NodeActionReply, correlation_id=new_correlation_id()
                )
                for report in batch
            ),
            return_exceptions=True,
        )
        for report, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, CcnError):
                log.warning("rate-limit report not recorded", node_id=report.node_id, error=outcome.message)
            elif isinstance(outcome, BaseException):
                raise outcome
