"""The rate limits an admin sets at run time: typed, bounded, validated; defaults in code.

Stored as JSON under key `rate_limits` in the `ccn_config` bucket (ccn_core.topology); every
edge watches the key and applies a new value at once (ccn_edge.rate_limits), no restart.

- `per_node`: one limit per node for each thing a node does (`ACTIONS`): an HTTP endpoint of
  /compute or a WebSocket frame type. A `results` frame costs one per result in it.
  A refusal here is the node's violation: counted, and reported to the registry.
- `per_job_type`: asks for work naming a job type (a `ready` frame, GET /compute/job), all
  nodes together. Protects what a job type leans on (the fetch proxy for crawls).
- `global`: every node request to the edges together.

`chunk`: an edge may take that many permits of the shared limit at once and spend them
locally (ADR 0017), for limits every request hits (global, per job type), where one shared
write per request would make the limit's key the hottest in the system. The shared limit still
holds; what a chunk costs is bounded: at most one chunk per edge replica of slack.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from ccn_core.errors import BadInput
from ccn_core.ratelimit import MAX_BURST, MAX_PERIOD_S, MAX_RATE, MIN_PERIOD_S, emission_interval_ns
from ccn_core.topology import CONFIG, RATE_LIMIT_STATE
from ccn_core.untrusted import decode_untrusted, untrusted_decoder

CONFIG_BUCKET = CONFIG.bucket
RATE_LIMITS_KEY = "rate_limits"
# how long the shared limiter's bucket keeps a key nobody writes: a key idle for longer than
# burst x interval is back to idle anyway, so every limit's tolerance must fit within it
STATE_TTL_S: Final = RATE_LIMIT_STATE.ttl_s
MAX_CHUNK = 10_000
MAX_JOB_TYPE_LIMITS = 64

Action = Literal[
    "http.telemetry",
    "http.job",
    "http.job_result",
    "http.job_fail",
    "http.fetch",
    "ws.ready",
    "ws.result",
    "ws.fail",
    "ws.heartbeat",
    "ws.fetch",
]
ACTIONS: Final[tuple[str, ...]] = Action.__args__  # type: ignore[attr-defined]
JobTypeName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]


class LimitRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    rate: Annotated[int, msgspec.Meta(ge=1, le=MAX_RATE)]  # requests ...
    period_s: Annotated[float, msgspec.Meta(ge=MIN_PERIOD_S, le=MAX_PERIOD_S)]  # ... per this long
    burst: Annotated[int, msgspec.Meta(ge=1, le=MAX_BURST)]  # requests allowed at once
    chunk: Annotated[int, msgspec.Meta(ge=1, le=MAX_CHUNK)] = 1  # permits an edge takes at a time


class RateLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    per_node: dict[Action, LimitRule] = msgspec.field(default_factory=dict)
    per_job_type: dict[JobTypeName, LimitRule] = msgspec.field(default_factory=dict)
    global_: LimitRule | None = msgspec.field(default=None, name="global")


# Generous: a well-behaved node never meets them (the reference node heartbeats every 10 s,
# long-polls for 20 s, and sends a `ready` with each result it returns, so its frames follow
# its throughput); a node polling in a loop does. docs/adr/0017 gives the expected intervals.
DEFAULT_RATE_LIMITS: Final = RateLimits(
    per_node={
        "http.telemetry": LimitRule(rate=1, period_s=1.0, burst=10),
        "http.job": LimitRule(rate=2, period_s=1.0, burst=10),
        "http.job_result": LimitRule(rate=50, period_s=1.0, burst=100),
        "http.job_fail": LimitRule(rate=50, period_s=1.0, burst=100),
        # a crawl job fetches its pages one after another, and the fetch proxy holds each domain
        # to its own rate: a node past this is fetching for far more jobs than it can run
        "http.fetch": LimitRule(rate=20, period_s=1.0, burst=50),
        "ws.ready": LimitRule(rate=500, period_s=1.0, burst=1000, chunk=20),
        "ws.result": LimitRule(rate=1000, period_s=1.0, burst=2000, chunk=50),
        "ws.fail": LimitRule(rate=200, period_s=1.0, burst=400, chunk=10),
        "ws.heartbeat": LimitRule(rate=1, period_s=1.0, burst=10),
        "ws.fetch": LimitRule(rate=20, period_s=1.0, burst=50),
    },
    global_=LimitRule(rate=50_000, period_s=1.0, burst=100_000, chunk=200),
)

_decoder = untrusted_decoder(RateLimits)


def rule_problem(rule: LimitRule) -> str | None:
    """What is wrong with a rule beyond its fields' own bounds, or None."""
    if rule.chunk > rule.burst:
        return f"chunk ({rule.chunk}) must not exceed burst ({rule.burst})"
    tolerance_s = emission_interval_ns(rule.rate, rule.period_s) * rule.burst / 1e9
    if tolerance_s > STATE_TTL_S:
        return (
            f"burst x period / rate is {tolerance_s:.0f} s; at most {STATE_TTL_S:.0f} s "
            "(the shared state of an idle key is kept that long)"
        )
    return None


def checked(limits: RateLimits) -> RateLimits:
    """The limits, or BadInput naming the first rule that cannot be enforced."""
    if len(limits.per_job_type) > MAX_JOB_TYPE_LIMITS:
        raise BadInput(f"at most {MAX_JOB_TYPE_LIMITS} job type limits", field="per_job_type")
    named: list[tuple[str, LimitRule]] = [
        *((f"per_node.{action}", rule) for action, rule in limits.per_node.items()),
        *((f"per_job_type.{job_type}", rule) for job_type, rule in limits.per_job_type.items()),
    ]
    if limits.global_ is not None:
        named.append(("global", limits.global_))
    for field, rule in named:
        problem = rule_problem(rule)
        if problem is not None:
            raise BadInput(problem, field=field)
    return limits


def parse_rate_limits(data: bytes) -> RateLimits:
    """Untrusted JSON (an admin's PUT, or the stored key) → checked limits, or BadInput."""
    return checked(decode_untrusted(data, _decoder))


def encode_rate_limits(limits: RateLimits) -> bytes:
    return msgspec.json.encode(limits)
