"""Prometheus metrics of a service process, served at /metrics on its HTTP port (the health
server's, or the app's) and scraped by the ServiceMonitor of deploy/k8s.

One registry per process (prometheus-client's default): a process is one service. Labels are
bounded by construction: a command label is a registered command or "unknown", a route is the
route's template (never a raw path), a consumer is a durable name from the topology.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import nats.errors
from nats.js import JetStreamContext
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

from ccn_core.logging import get_logger
from ccn_core.topology import ConsumerSpec

log = get_logger("ccn.metrics")

# a command is a NATS round trip plus an append or two: milliseconds, seconds when something waits
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

COMMAND_SECONDS = Histogram(
    "ccn_command_seconds",
    "Time to handle a command (ccn.cmd.<service>.<command>), by outcome: ok, refused (a typed error), failed",
    ["service", "command", "outcome"],
    buckets=_LATENCY_BUCKETS,
)
COMMANDS_DROPPED = Counter(
    "ccn_commands_dropped_total",
    "Commands not handled: overloaded (refused at once, every slot busy) or past_deadline (the caller gave up)",
    ["service", "reason"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "ccn_http_request_seconds",
    "Time to answer an HTTP request, by route template and status code",
    ["service", "method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
)
CONSUMER_PENDING = Gauge(
    "ccn_consumer_pending_messages",
    "Messages of its stream a durable consumer (projection or reactor) has yet to be delivered: its lag",
    ["consumer", "stream"],
)
CONSUMER_ACK_PENDING = Gauge(
    "ccn_consumer_ack_pending_messages",
    "Messages delivered to a durable consumer and not yet acknowledged",
    ["consumer", "stream"],
)
CONSUMER_LAG_ERRORS = Counter(
    "ccn_consumer_lag_errors_total", "Failed looks at a consumer's lag (it may not exist yet)", ["consumer"]
)
# a fetch's outcome and, when it was not fetched, its refusal stage or failure reason: both from
# closed sets (ccn_proto.fetch), so the series are bounded
FETCHES = Counter(
    "ccn_fetches_total",
    "Fetches the fetch proxy answered: fetched (reason: status class), refused (reason: stage), failed (reason)",
    ["outcome", "reason"],
)
JOBS_BY_STATE = Gauge("ccn_jobs", "Jobs in the job read model, by state", ["state"])
SCHEDULER_LIVE_JOBS = Gauge(
    "ccn_scheduler_live_jobs", "Unfinished jobs on the claim owner's board (0 on a standby replica)"
)
SCHEDULER_READY_JOBS = Gauge("ccn_scheduler_ready_jobs", "Jobs a claim could take now, on the claim owner's board")
CLAIMS = Counter(
    "ccn_claims_total",
    "Claims answered by the scheduler, by outcome: offered, empty, withheld (by node governance)",
    ["outcome"],
)
NODE_CONNECTIONS = Gauge(
    "ccn_edge_node_connections", "WebSocket connections of nodes that said hello, on this edge replica"
)


def exposition() -> tuple[bytes, str]:
    """The body and content type of a /metrics answer."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def record_consumer_lag(spec: ConsumerSpec, pending: int, ack_pending: int) -> None:
    CONSUMER_PENDING.labels(spec.durable, spec.stream).set(pending)
    CONSUMER_ACK_PENDING.labels(spec.durable, spec.stream).set(ack_pending)


async def sample_consumer_lag(
    js: JetStreamContext, specs: Iterable[ConsumerSpec], stopping: asyncio.Event, *, every_s: float = 10.0
) -> None:
    """Until `stopping`, every every_s: each consumer's pending counts, as the server reports them."""
    watched = tuple(specs)
    while not stopping.is_set():
        for spec in watched:
            try:
                async with asyncio.timeout(2):
                    info = await js.consumer_info(spec.stream, spec.durable)
            except (nats.errors.Error, TimeoutError):
                CONSUMER_LAG_ERRORS.labels(spec.durable).inc()
                continue
            record_consumer_lag(spec, info.num_pending or 0, info.num_ack_pending or 0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every_s):
                await stopping.wait()
