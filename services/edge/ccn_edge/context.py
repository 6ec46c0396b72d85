"""What every edge handler needs: command clients for the services behind it, and the salt that
turns a caller's IP into the hash that is all anyone stores of it."""

from __future__ import annotations

import contextlib
import ipaddress
from typing import Any, TypeVar

import msgspec
from litestar.connection import ASGIConnection

from ccn_core import subjects
from ccn_core.coalesce import Coalescer
from ccn_core.commands import CommandClient, raise_command_error
from ccn_core.errors import CcnError
from ccn_core.ids import ip_hash, new_correlation_id
from ccn_core.settings import Settings
from ccn_edge.fetch_relay import FetchRelay, FetchSlots
from ccn_edge.rate_limits import EdgeLimits, Violations
from ccn_proto.commands import CommandError
from ccn_proto.nodes import NodeMetrics
from ccn_proto.registry import Heartbeat, HeartbeatReply
from ccn_proto.scheduler import (
    MAX_BATCHED_ASKS,
    BatchedClaimOutcome,
    BatchedResult,
    BatchedResultOutcome,
    ClaimBatch,
    ClaimBatchReply,
    ClaimJobs,
    ClaimJobsReply,
    JobOffer,
    ReleaseJob,
    ReleaseJobReply,
    SubmitResult,
    SubmitResultReply,
    SubmitResults,
    SubmitResultsReply,
    WithdrawClaim,
)
from ccn_web.http import correlation_id

R = TypeVar("R")
REGISTRY = "registry"
SCHEDULER = "scheduler"


# a command's body, with headroom under NATS's default max_payload of 1 MiB for the envelope
MAX_COMMAND_BYTES = 768 * 1024


# what a batched result adds besides its frame: the correlation id and the fields around it
_ITEM_OVERHEAD = 256
# batches out at once per kind: one being answered while the next gathers, and one spare so a
# slow answer does not stall every node of this edge
BATCHES_IN_FLIGHT = 2


class EdgeContext:
    def __init__(
        self,
        commands: CommandClient,
        ip_hash_salt: str,
        *,
        max_request_bytes: int = MAX_COMMAND_BYTES,
        limits: EdgeLimits | None = None,
        fetches: FetchRelay | None = None,
    ) -> None:
        self.commands = commands
        self._salt = ip_hash_salt
        # the nodes' rate limits (none when the edge is built without JetStream, for a test)
        self.limits = limits or EdgeLimits(None, Violations(replica="-"))
        # nodes' fetches, passed on to the fetch proxy
        if fetches is None:
            defaults = Settings()
            fetches = FetchRelay(
                commands, FetchSlots(defaults.edge_max_fetches_per_node), timeout_s=defaults.edge_fetch_timeout_s
            )
        self.fetches = fetches
        # the node connections of this edge ask and answer through these: one command per batch
        self._claims = Coalescer(
            self._send_claims,
            max_batch=MAX_BATCHED_ASKS,
            max_in_flight=BATCHES_IN_FLIGHT,
            orphaned=self._release_orphaned_offers,
        )
        # results can be large (a frame may be up to CCN_MAX_FRAME_BYTES): a batch is bounded
        # by bytes too, under NATS's max_payload, with room for the envelope
        self._results = Coalescer(
            self._send_results,
            max_batch=MAX_BATCHED_ASKS,
            max_in_flight=BATCHES_IN_FLIGHT,
            max_bytes=max_request_bytes,
            orphaned=self._release_orphaned_result_offers,
        )

    def caller_ip_hash(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
        host = connection.client.host if connection.client else None
        return ip_hash(host, self._salt) if host else None

    def replica_ip_hash(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
        """The address hash the replica rule compares (ccn_core.replicas): none for a caller on
        the edge's own host, as a development stack's nodes are, whose only independence is
        their node ids. Behind a proxy the address is the forwarded one (CCN_FORWARDED_ALLOW_IPS)."""
        host = connection.client.host if connection.client else None
        if not host or _is_loopback(host):
            return None
        return ip_hash(host, self._salt)

    async def registry(
        self, connection: ASGIConnection[Any, Any, Any, Any], name: str, command: msgspec.Struct, reply_type: type[R]
    ) -> R:
        return await self.commands.call(
            REGISTRY, name, command, reply_type, correlation_id=correlation_id(connection.scope)
        )

    async def session_node(
        self, session_token: str, *, correlation_id: str, metrics: NodeMetrics | None = None
    ) -> HeartbeatReply:
        """The node behind a session token, as the registry judges it; the session's last_seen
        moves, and the node's `metrics` (a heartbeat's) go into its telemetry sample. Every
        node-facing path (HTTP, WebSocket hello and heartbeats) asks this way."""
        beat = Heartbeat(session_token=session_token, metrics=metrics)
        return await self.commands.call(REGISTRY, "heartbeat", beat, HeartbeatReply, correlation_id=correlation_id)

    async def scheduler(
        self,
        name: str,
        command: msgspec.Struct,
        reply_type: type[R],
        *,
        correlation_id: str,
        timeout: float | None = None,  # noqa: ASYNC109 - forwarded to the NATS request
    ) -> R:
        return await self.commands.call(
            SCHEDULER, name, command, reply_type, correlation_id=correlation_id, timeout=timeout
        )

    async def withdraw_claim(self, claim_id: str) -> None:
        """Tell every scheduler replica to drop a claim still waiting (its node left)."""
        await self.commands.notify(subjects.claims_withdrawn(), WithdrawClaim(claim_id=claim_id))

    async def claim_now(self, ask: ClaimJobs) -> ClaimJobsReply:
        """What is ready for this node now, without waiting, sent with other nodes' asks."""
        outcome = await self._claims.submit(ask)
        if outcome.reply is None:
            raise_command_error(outcome.error or CommandError(code="internal", message="no answer"))
        return outcome.reply

    async def submit_result(
        self, submit: SubmitResult, *, correlation_id: str, size: int, then_claim: ClaimJobs | None = None
    ) -> tuple[SubmitResultReply, BatchedClaimOutcome | None]:
        """A node's result, sent with other nodes' results; `correlation_id` is the job's, `size`
        the bytes of the frame it came in (what it adds to the batch, near enough). `then_claim`:
        the node's next ask, made once the result is recorded; its answer comes back with the
        result's (None when the result was refused and the ask not made)."""
        item = BatchedResult(correlation_id=correlation_id, submit=submit, claim=then_claim)
        outcome = await self._results.submit(item, size=size + _ITEM_OVERHEAD)
        if outcome.reply is None:
            raise_command_error(outcome.error or CommandError(code="internal", message="no answer"))
        return outcome.reply, outcome.claim

    async def release_job(self, node_id: str, offer: JobOffer, reason: str) -> None:
        """Give back a job claimed for a node that will not run it: claimable again at once,
        without spending an attempt."""
        await self.scheduler(
            "release_job",
            ReleaseJob(node_id=node_id, job_id=offer.job_id, reason=reason),
            ReleaseJobReply,
            correlation_id=offer.correlation_id,
        )

    async def _send_claims(self, asks: list[ClaimJobs]) -> list[BatchedClaimOutcome]:
        reply = await self.scheduler(
            "claim_batch", ClaimBatch(asks=asks), ClaimBatchReply, correlation_id=new_correlation_id()
        )
        return reply.outcomes

    async def _send_results(self, items: list[BatchedResult]) -> list[BatchedResultOutcome]:
        reply = await self.scheduler(
            "submit_results", SubmitResults(items=items), SubmitResultsReply, correlation_id=new_correlation_id()
        )
        return reply.outcomes

    async def _release_orphaned_offers(self, ask: ClaimJobs, outcome: BatchedClaimOutcome) -> None:
        for offer in outcome.reply.offers if outcome.reply is not None else []:
            with contextlib.suppress(CcnError):
                await self.release_job(ask.node_id, offer, "the node left before the offer reached it")

    async def _release_orphaned_result_offers(self, item: BatchedResult, outcome: BatchedResultOutcome) -> None:
        if item.claim is not None and outcome.claim is not None:
            await self._release_orphaned_offers(item.claim, outcome.claim)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
