"""WebSocket /ws: a node's live connection. Frames are the tagged union in ccn_proto.node_protocol.

The first frame is a hello (session token, versions, capabilities), judged here and by the
registry; then the node says how much work it has room for (ready), and the edge claims jobs
for it from the scheduler and offers them; results, failures and heartbeats become scheduler
commands carrying each job's own correlation id. A `fetch` frame, for a job the connection
holds, goes to the fetch proxy (ccn_edge.fetch_relay) in a task of its own, so a slow site
holds up neither the node's other frames nor its other fetches; at most
CCN_EDGE_MAX_FETCHES_PER_NODE are out at once, and each is answered by a `fetch_result` or an
`error` naming its request_id. A bad frame gets a typed error frame and changes nothing; a
flood of them closes the connection with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable
from typing import Any, NoReturn

import msgspec
from litestar import WebSocket, websocket
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect

from ccn_core.errors import BadInput, CcnError, Conflict, Forbidden, PayloadTooLarge, Unauthorized, Unavailable
from ccn_core.logging import correlation, get_logger
from ccn_core.rate_limit_config import Action
from ccn_core.untrusted import decode_untrusted, untrusted_decoder
from ccn_edge.connection_gate import Refusal, Ticket
from ccn_edge.connection_limits import SocketLimits, node_connections_refusal, ungreeted_refusal
from ccn_edge.context import EdgeContext
from ccn_edge.node_link import (
    BadFrameBudget,
    Holdings,
    hello_problem,
    job_offers_frames,
    repeated_job,
    withheld_wait_s,
)
from ccn_edge.result_signatures import result_signature_problem
from ccn_jobs.registry import JOB_TYPES
from ccn_proto import node_protocol as frames
from ccn_proto import scheduler
from ccn_proto.fetch import FetchPage
from ccn_proto.nodes import NodeMetrics
from ccn_web.http import correlation_id

log = get_logger("ccn.edge.ws")

HELLO_TIMEOUT_S = 10.0
HEARTBEAT_INTERVAL_S = 10.0
# a node that says nothing for this long (no frame, no heartbeat) is gone
IDLE_TIMEOUT_S = 4 * HEARTBEAT_INTERVAL_S
CLAIM_WAIT_S = 10.0
CLAIM_MARGIN_S = 5.0  # the scheduler holds a claim up to CLAIM_WAIT_S, then answers
# the scheduler answers at once, empty, when it counts the node full (e.g. a reservation whose
# claim may still land): ask again after this pause, or sooner when a slot frees here
FULL_PAUSE_S = 1.0
# never wait longer than this before asking again for a node whose work is withheld (a backoff
# may be lifted early)
MAX_WITHHELD_WAIT_S = 60.0
WS_POLICY_VIOLATION = 1008
WS_TRY_AGAIN_LATER = 1013

# what a result in a results frame adds to the submit batch besides its result, id and checksum
_RESULT_ITEM_FIELDS_BYTES = 64
# what a result's usage adds (its four numbers at their widest)
_USAGE_BYTES = 128
# what a result's signature and attempt add (86 characters of signature, the field names)
_SIGNATURE_BYTES = 128

_frame_decoder = untrusted_decoder(frames.NodeFrame)
_encode = msgspec.json.Encoder().encode


_MeteredFrame = frames.Ready | frames.JobResult | frames.JobResults | frames.JobFail | frames.Heartbeat


def metered(frame: _MeteredFrame, job_types: list[str]) -> tuple[Action, int, list[str]]:
    """What a frame spends of the node's rate limits: its action, its cost (a results frame
    costs one per result) and, for an ask for work, the job types it asks for."""
    match frame:
        case frames.Ready():
            return "ws.ready", 1, job_types
        case frames.JobResults(results=results):
            return "ws.result", max(1, len(results)), []
        case frames.JobResult():
            return "ws.result", 1, []
        case frames.JobFail():
            return "ws.fail", 1, []
        case frames.Heartbeat():
            return "ws.heartbeat", 1, []


class _Closed(Exception):
    """The connection is over: the node left, or the edge hung up on it."""


class NodeLink:
    """One connection's life. Two tasks share it: the reader answers the node's frames, the
    claimer fetches work while the node has room; sends are serialised by a lock."""

    def __init__(
        self, socket: WebSocket[Any, Any, Any], edge: EdgeContext, max_frame_bytes: int, limits: SocketLimits
    ) -> None:
        self._socket = socket
        self._edge = edge
        self._max_frame_bytes = max_frame_bytes
        self._limits = limits
        # this socket's place among those that have not said hello, then under its node's cap
        self._unwelcomed_slot: Ticket | None = None
        self._node_slot: Ticket | None = None
        self._send_lock = asyncio.Lock()
        self._budget = BadFrameBudget()
        self._connection_id = correlation_id(socket.scope)
        self._wake_claimer = asyncio.Event()
        self._closed = False
        self.node_id = ""
        self._session_token = ""
        self._public_key: str | None = None  # the node's registered key: its results' signatures verify by it
        self._job_types: list[str] = []
        self._holdings = Holdings(concurrency=1)
        self._batch_frames = False  # the node reads job_offers and acks frames
        self._claim_id: str | None = None  # the claim waiting at the scheduler, if any
        self._said_bye = False
        self._draining = False  # the scheduler said so: bye once the node holds nothing
        self._told_withheld: tuple[str | None, Any] | None = None  # the last withholding told to the node
        self._fetches: set[asyncio.Task[None]] = set()  # the node's fetches out at the proxy
        # the address its claims name, hashed once (replicas of one job never go to two nodes
        # behind one address)
        self._replica_ip_hash = self._edge.replica_ip_hash(self._socket)

    async def run(self) -> None:
        ip_hash = self._edge.caller_ip_hash(self._socket) or "-"
        admission = self._limits.ungreeted.acquire(ip_hash)
        try:
            await self._socket.accept()
            with correlation(self._connection_id):
                if isinstance(admission, Refusal):
                    kind, refusal = ungreeted_refusal(admission)
                    self._limits.refusals.refused(kind, ip_hash, "connection refused before hello", ip_hash=ip_hash)
                    with contextlib.suppress(_Closed):
                        await self._turn_away(refusal, WS_TRY_AGAIN_LATER)
                    return
                self._unwelcomed_slot = admission
                try:
                    await self._greet()
                except _Closed:
                    return
                await self._serve()
        finally:
            if isinstance(admission, Ticket):
                admission.release()
            if self._node_slot is not None:
                self._node_slot.release()

    async def _serve(self) -> None:
        """The welcomed connection, until either side ends it."""
        with correlation(self._connection_id, node_id=self.node_id):
            log.info("node connected", job_types=self._job_types, concurrency=self._holdings.concurrency)
            claimer = asyncio.create_task(self._claim_loop(), name=f"claim-{self.node_id}")
            try:
                await self._read_loop()
            except _Closed:
                pass
            finally:
                for fetch in self._fetches:  # their answers would reach no one
                    fetch.cancel()
                # the socket is gone: it no longer counts against its node's cap while the
                # claimer winds down (up to a claim's wait), so a quick reconnect gets in
                if self._node_slot is not None:
                    self._node_slot.release()
                # a claim may be waiting at the scheduler: let it come back, so what it took
                # for this node is handed back instead of held by no one until its lease ends
                self._closed = True
                self._wake_claimer.set()
                if self._claim_id is not None:
                    # or it would take jobs for this node while it waits, and hand them
                    # back as failures: an attempt spent and a backoff each
                    with contextlib.suppress(CcnError):
                        await self._edge.withdraw_claim(self._claim_id)
                _, pending = await asyncio.wait({claimer}, timeout=CLAIM_WAIT_S + CLAIM_MARGIN_S + 1)
                if pending:
                    claimer.cancel()
                log.info("node disconnected", holding=len(self._holdings.held), said_bye=self._said_bye)
                await self._hand_over_holdings(list(self._holdings.held), release_now=self._said_bye)

    async def _hand_over_holdings(self, job_ids: list[str], *, release_now: bool) -> None:
        """Tell the scheduler which jobs this connection held as it closed, or which the node no
        longer runs: they go back after the release grace (at once if `release_now`) unless the
        node comes back for them. If the scheduler cannot be told, their leases run out instead."""
        if not job_ids:
            return
        try:
            await self._edge.scheduler(
                "node_disconnected",
                scheduler.NodeDisconnected(node_id=self.node_id, job_ids=job_ids, release_now=release_now),
                scheduler.NodeDisconnectedReply,
                correlation_id=self._connection_id,
            )
        except CcnError as exc:
            log.warning("jobs left to their leases", jobs=len(job_ids), error=exc.message)

    # -- frames in ---------------------------------------------------------------------------

    async def _receive(self, timeout: float) -> tuple[frames.NodeFrame, int] | None:  # noqa: ASYNC109 - idle limit
        """The next frame and its size in bytes, or None after answering a bad one."""
        try:
            async with asyncio.timeout(timeout):
                event = await self._socket.receive()
        except TimeoutError:
            await self._hang_up(WS_POLICY_VIOLATION, "no frame within the idle timeout")
        if event["type"] == "websocket.disconnect":
            raise _Closed
        raw: str | bytes = event.get("text") or event.get("bytes") or b""  # type: ignore[assignment]
        if len(raw) > self._max_frame_bytes:
            await self._refuse(PayloadTooLarge(f"frames are limited to {self._max_frame_bytes} bytes"))
            return None
        try:
            frame: frames.NodeFrame = decode_untrusted(raw, _frame_decoder)
        except BadInput as exc:
            await self._refuse(exc)
            return None
        self._budget.refund()
        return frame, len(raw)

    async def _greet(self) -> None:
        received = await self._receive(HELLO_TIMEOUT_S)
        frame = received[0] if received is not None else None
        if not isinstance(frame, frames.Hello):
            await self._hang_up(WS_POLICY_VIOLATION, "the first frame must be a hello")
        problem = hello_problem(frame, JOB_TYPES.keys())
        if problem is not None:
            await self._send_error(problem)
            await self._hang_up(WS_POLICY_VIOLATION, problem.message)
        await self._authenticate(frame)
        await self._restore_holdings(frame.running)

    async def _restore_holdings(self, running: list[str] | None) -> None:
        """A node that reconnects still runs the jobs it held: their results and renewals come
        on this connection, so they are this connection's from the start. Those it held and
        does not name as running go back to the queue at the scheduler."""
        try:
            reply = await self._edge.scheduler(
                "held_jobs",
                scheduler.HeldJobs(node_id=self.node_id, running=running),
                scheduler.HeldJobsReply,
                correlation_id=self._connection_id,
            )
        except CcnError as exc:
            await self._send_error(exc)
            await self._hang_up(WS_TRY_AGAIN_LATER, "cannot tell which jobs this node holds; reconnect shortly")
        for job in reply.jobs:
            self._holdings.resumed(job.job_id, job.correlation_id, job.attempt)
        if reply.jobs:
            log.info("node holds jobs from an earlier connection", jobs=[job.job_id for job in reply.jobs])

    async def _authenticate(self, frame: frames.Hello) -> None:
        try:
            identity = await self._edge.session_node(frame.session_token, correlation_id=self._connection_id)
        except (Unauthorized, Forbidden, BadInput) as exc:
            await self._send_error(exc)
            await self._hang_up(WS_POLICY_VIOLATION, exc.message)
        except Unavailable as exc:
            await self._send_error(exc)
            await self._hang_up(WS_TRY_AGAIN_LATER, exc.message)
        slot = self._limits.per_node.acquire(identity.node_public_id)
        if isinstance(slot, Refusal):
            kind, refusal = node_connections_refusal(slot)
            self._limits.refusals.refused(
                kind, identity.node_public_id, "connection refused: node over its cap", node_id=identity.node_public_id
            )
            await self._turn_away(refusal, WS_POLICY_VIOLATION)
        self._node_slot = slot
        if self._unwelcomed_slot is not None:
            self._unwelcomed_slot.release()  # greeted: from now on it counts as its node's
        self.node_id = identity.node_public_id
        self._session_token = frame.session_token
        self._public_key = identity.public_key
        self._job_types = sorted(set(frame.capabilities.job_types))
        self._holdings = Holdings(concurrency=frame.capabilities.concurrency)
        self._batch_frames = frame.capabilities.batch_frames
        await self._send(
            frames.Welcome(
                node_public_id=identity.node_public_id,
                session_id=identity.session_id,
                server_time=identity.server_time,
                heartbeat_interval_s=HEARTBEAT_INTERVAL_S,
            )
        )

    async def _read_loop(self) -> None:
        while True:
            received = await self._receive(IDLE_TIMEOUT_S)
            if received is None:
                continue
            frame, size = received
            match frame:
                case frames.Ready(slots=slots):
                    if not await self._within_rate_limits(frame):
                        continue
                    self._holdings.ask(slots)
                    self._wake_claimer.set()
                case frames.JobResult() | frames.JobResults() | frames.JobFail() | frames.Heartbeat():
                    if not await self._within_rate_limits(frame):
                        continue
                    if not self._limits.frames.enter():
                        await self._busy(frame, self._limits.frames.refusal())
                        continue
                    try:
                        await self._on_service_frame(frame, size)
                    finally:
                        self._limits.frames.leave()
                case frames.Fetch():
                    await self._on_fetch(frame)
                case frames.Bye():
                    self._said_bye = True
                    await self._hang_up(1000, "bye")
                case frames.Hello():
                    await self._refuse(BadInput("already greeted: send hello once per connection", field="type"))

    async def _on_service_frame(
        self, frame: frames.JobResult | frames.JobResults | frames.JobFail | frames.Heartbeat, size: int
    ) -> None:
        match frame:
            case frames.JobResult() as result:
                item = frames.ResultItem(
                    job_id=result.job_id,
                    result=result.result,
                    checksum=result.checksum,
                    usage=result.usage,
                    signature=result.signature,
                )
                await self._on_results([item], result.ready, size)
            case frames.JobResults(results=results, ready=ready):
                await self._on_results(results, ready, size)
            case frames.JobFail() as failed:
                await self._on_fail(failed)
            case frames.Heartbeat(job_ids=job_ids, metrics=metrics):
                await self._on_heartbeat(job_ids, metrics)

    async def _on_fetch(self, frame: frames.Fetch) -> None:
        """Pass the fetch on in a task of its own, once the node holds the job, is within its
        fetch rate and has a fetch slot free; otherwise answer it with the refusal."""
        job_correlation = self._holdings.correlation_of(frame.job_id)
        if job_correlation is None:
            refusal = Conflict(f"this node does not hold job {frame.job_id}")
            await self._refuse(refusal, job_id=frame.job_id, request_id=frame.request_id)
            return
        try:
            await self._edge.limits.check(self.node_id, "ws.fetch")
            slot = self._edge.fetches.slots.take(self.node_id)
        except CcnError as exc:
            await self._send_error(exc, job_id=frame.job_id, request_id=frame.request_id)
            return
        command = FetchPage(
            job_id=frame.job_id,
            node_id=self.node_id,  # the session's, whatever the node might wish
            url=frame.url,
            if_none_match=frame.if_none_match,
            if_modified_since=frame.if_modified_since,
        )
        with correlation(job_correlation, node_id=self.node_id, job_id=frame.job_id):
            task = asyncio.create_task(self._fetch(command, frame.request_id, job_correlation, slot))
        self._fetches.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            self._fetches.discard(done)
            slot.release()  # a task cancelled before it started never reached the relay, which releases it

        task.add_done_callback(finished)

    async def _fetch(self, command: FetchPage, request_id: str, job_correlation: str, slot: Ticket) -> None:
        try:
            outcome = await self._edge.fetches.fetch(command, correlation_id=job_correlation, slot=slot)
        except CcnError as exc:
            with contextlib.suppress(_Closed):
                await self._send_error(exc, job_id=command.job_id, request_id=request_id)
            return
        except Exception:
            log.exception("fetch failed", request_id=request_id)
            with contextlib.suppress(_Closed):
                await self._send_error(CcnError("internal error"), job_id=command.job_id, request_id=request_id)
            return
        with contextlib.suppress(_Closed):
            await self._send(frames.FetchResult(request_id=request_id, outcome=outcome))

    async def _within_rate_limits(self, frame: _MeteredFrame) -> bool:
        """The node's rate limits for this frame (ccn_edge.rate_limits); False once refused."""
        action, cost, job_types = metered(frame, self._job_types)
        try:
            await self._edge.limits.check(self.node_id, action, cost=cost, job_types=job_types)
        except CcnError as exc:  # rate_limited, or unavailable when the limits cannot be checked
            await self._busy(frame, exc)
            return False
        return True

    async def _busy(self, frame: _MeteredFrame, refusal: CcnError) -> None:
        """The edge will not pass this frame on now (the frames it has out at the services are
        at their cap, or the node is over a rate limit): refused untouched, with retry_after.
        A result or failure names its job (the node keeps it and sends it again); a heartbeat's
        or ready's refusal names none (the node holds back its asks for that long)."""
        match frame:
            case frames.JobResult(job_id=job_id) | frames.JobFail(job_id=job_id):
                await self._send_error(refusal, job_id=job_id)
            case frames.JobResults(results=results):
                for item in results:
                    await self._send_error(refusal, job_id=item.job_id)
            case frames.Heartbeat() | frames.Ready():
                await self._send_error(refusal)

    async def _on_results(self, results: list[frames.ResultItem], ready: int, size: int) -> None:
        """A `result` frame (one item) or a `results` frame: each result goes to the scheduler
        in the edge's submit batch on its own job's thread and is answered on its own (an ack,
        or an error naming its job); the node's next ask (`ready`) follows once they are."""
        repeated = repeated_job(results)
        if repeated is not None:
            await self._refuse(repeated)
            return
        held: list[tuple[frames.ResultItem, str]] = []
        strangers = 0
        for item in results:
            job_correlation = self._holdings.correlation_of(item.job_id)
            if job_correlation is None:
                refusal: CcnError = Conflict(f"this node does not hold job {item.job_id}")
            else:
                problem = self._signature_problem(item, job_correlation)
                if problem is None:
                    held.append((item, job_correlation))
                    continue
                refusal = problem
            strangers += 1
            if strangers == 1:
                await self._refuse(refusal, job_id=item.job_id)
            else:  # a frame spends the bad-frame budget once, however many bad items it names
                await self._send_error(refusal, job_id=item.job_id)
        if not held:
            self._wants(ready)
            return
        # one result: the scheduler takes the ask once the result is recorded and its slot is
        # free, one round trip instead of two. Several: the ask waits for all of them here and
        # goes to the claimer as a ready frame's would, one claim for the frame (asks riding on
        # each result would each claim for the same node at once, contending for its slots)
        slots = min(ready, self._holdings.room + (held[0][0].job_id in self._holdings.held)) if len(held) == 1 else 0
        outcomes = await asyncio.gather(
            *(
                self._submit(item, job_correlation, size if len(results) == 1 else None, slots)
                for item, job_correlation in held
            ),
            return_exceptions=True,
        )
        acks: list[frames.Ack] = []
        refused: list[tuple[str, CcnError]] = []
        offers: list[scheduler.JobOffer] = []
        failure: BaseException | None = None
        for (item, _), outcome in zip(held, outcomes, strict=True):
            if isinstance(outcome, CcnError):
                refused.append((item.job_id, outcome))
            elif isinstance(outcome, BaseException):
                failure = outcome
            else:
                reply, claimed = outcome
                self._holdings.release(item.job_id)
                acks.append(frames.Ack(job_id=item.job_id, status=reply.status))
                if claimed is not None and claimed.reply is not None:
                    offers.extend(claimed.reply.offers)
        try:
            if failure is not None:
                raise failure
            await self._send_acks(acks)
            for job_id, exc in refused:
                await self._refused(job_id, exc)
        except BaseException:
            await self._hand_back(offers)
            raise
        await self._offer(offers)
        self._wants(ready - len(offers))
        await self._bye_if_drained()

    def _signature_problem(self, item: frames.ResultItem, job_correlation: str) -> CcnError | None:
        """Why the result's signature is refused (logged, on the job's thread), or None."""
        problem = result_signature_problem(
            self._public_key,
            job_id=item.job_id,
            attempt=self._holdings.attempt_of(item.job_id),
            checksum=item.checksum,
            signature=item.signature,
        )
        if problem is not None:
            with correlation(job_correlation, node_id=self.node_id, job_id=item.job_id):
                log.warning("result refused: its signature does not hold", reason=problem.message)
        return problem

    async def _submit(
        self, item: frames.ResultItem, job_correlation: str, size: int | None, slots: int
    ) -> tuple[scheduler.SubmitResultReply, scheduler.BatchedClaimOutcome | None]:
        command = scheduler.SubmitResult(
            node_id=self.node_id,
            job_id=item.job_id,
            result=item.result,
            checksum=item.checksum,
            usage=item.usage,
            attempt=self._holdings.attempt_of(item.job_id) if item.signature is not None else None,
            signature=item.signature,
        )
        if size is None:  # one of several in a frame: what it adds to the batch is its own size
            size = len(_encode(item.result)) + len(item.job_id) + len(item.checksum) + _RESULT_ITEM_FIELDS_BYTES
            if item.usage is not None:
                size += _USAGE_BYTES
            if item.signature is not None:
                size += _SIGNATURE_BYTES
        return await self._edge.submit_result(
            command,
            correlation_id=job_correlation,
            size=size,
            then_claim=self._claim_ask(slots) if slots > 0 else None,
        )

    def _wants(self, slots: int) -> None:
        """What a Ready frame of `slots` says; the claimer asks for what is not offered yet."""
        if slots > 0:
            self._holdings.ask(slots)
        self._wake_claimer.set()

    async def _on_fail(self, frame: frames.JobFail) -> None:
        job_correlation = self._holdings.correlation_of(frame.job_id)
        if job_correlation is None:
            await self._refuse(Conflict(f"this node does not hold job {frame.job_id}"), job_id=frame.job_id)
            return
        command = scheduler.FailJob(
            node_id=self.node_id, job_id=frame.job_id, reason=frame.reason, kind=frame.kind, usage=frame.usage
        )
        await self._settle(
            frame.job_id,
            self._edge.scheduler("fail_job", command, scheduler.FailJobReply, correlation_id=job_correlation),
        )

    async def _settle(self, job_id: str, call: Awaitable[scheduler.FailJobReply]) -> None:
        """The scheduler's answer to the node's failure, passed on to the node."""
        try:
            reply = await call
        except CcnError as exc:
            await self._refused(job_id, exc)
            return
        self._holdings.release(job_id)
        self._wake_claimer.set()
        await self._send(frames.Ack(job_id=job_id, status=reply.status))
        await self._bye_if_drained()

    async def _refused(self, job_id: str, exc: CcnError) -> None:
        """The scheduler refused the node's result or failure: the node hears why, and a job
        that is no longer its own stops counting against it."""
        if isinstance(exc, Conflict | Forbidden):
            self._holdings.release(job_id)
        await self._send_error(exc, job_id=job_id)

    async def _on_heartbeat(self, job_ids: list[str], metrics: NodeMetrics | None) -> None:
        try:
            await self._edge.session_node(self._session_token, correlation_id=self._connection_id, metrics=metrics)
        except (Unauthorized, Forbidden) as exc:
            await self._send_error(exc)
            await self._hang_up(WS_POLICY_VIOLATION, exc.message)
        except Unavailable as exc:
            await self._send_error(exc)
            return
        gone = self._holdings.confirm(job_ids)
        if gone:
            # it held them before it reconnected and does not run them now (it restarted): they
            # go back to the queue now, and here they stop taking the node's room
            log.info("node no longer runs jobs it held before reconnecting", jobs=gone)
            await self._hand_over_holdings(gone, release_now=True)
            self._wake_claimer.set()
        # one renewal per job thread, so each job's log lines carry its own correlation id
        threads: dict[str, list[str]] = {}
        for job_id in self._holdings.holding(job_ids):
            threads.setdefault(self._holdings.held[job_id], []).append(job_id)
        replies = await asyncio.gather(
            *(
                self._edge.scheduler(
                    "renew_leases",
                    scheduler.RenewLeases(node_id=self.node_id, job_ids=held),
                    scheduler.RenewLeasesReply,
                    correlation_id=thread,
                )
                for thread, held in threads.items()
            ),
            return_exceptions=True,
        )
        for reply in replies:
            if isinstance(reply, CcnError):
                await self._send_error(reply)
            elif isinstance(reply, BaseException):
                raise reply
            else:
                for lost in reply.lost:
                    self._holdings.release(lost.job_id)
                    message = f"stop job {lost.job_id}: {lost.message}"
                    await self._send(frames.Error(code=lost.code, message=message, job_id=lost.job_id))
                    self._wake_claimer.set()

    # -- work out ----------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while not self._closed:
            await self._wake_claimer.wait()
            self._wake_claimer.clear()
            while not self._closed and (slots := self._holdings.to_claim()) > 0:
                try:
                    reply = await self._ask(slots)
                except Forbidden as exc:
                    # banned, its consent not current, or no consent to any type it runs: no ask
                    # of this connection can succeed, so it ends with the reason
                    with contextlib.suppress(_Closed):
                        await self._send_error(exc)
                        await self._hang_up(WS_POLICY_VIOLATION, exc.message)
                    return
                except CcnError as exc:
                    with contextlib.suppress(_Closed):
                        await self._send_error(exc)
                    await asyncio.sleep(exc.retry_after or 1.0)
                    continue
                if reply.withheld is not None:
                    try:
                        await self._withheld(reply)
                    except _Closed:
                        return
                    continue
                self._draining, self._told_withheld = False, None  # lifted (an unban), if it was so
                if not reply.offers and reply.held >= self._holdings.concurrency:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(FULL_PAUSE_S):
                            await self._wake_claimer.wait()
                    self._wake_claimer.clear()
                    continue
                try:
                    await self._offer(reply.offers)
                except _Closed:
                    return

    async def _withheld(self, reply: scheduler.ClaimJobsReply) -> None:
        """Node governance gives the node nothing now. Draining: once it holds nothing it is told
        bye; until then the claimer waits for its results. Backed off (or its quota spent): the
        node hears until when (an error frame with retry_after and backoff_until, which the
        reference node honours by asking for nothing until then), and the claimer asks again
        after that, or after WITHHELD_RECHECK_S when no end is known (offline)."""
        if reply.draining:
            self._draining = True
            await self._bye_if_drained()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(MAX_WITHHELD_WAIT_S):  # a drain may be lifted (unban)
                    await self._wake_claimer.wait()
            self._wake_claimer.clear()
            return
        wait_s = withheld_wait_s(reply)
        if self._told_withheld != (reply.withheld, reply.backoff_until):
            self._told_withheld = (reply.withheld, reply.backoff_until)
            await self._send(
                frames.Error(
                    code="backed_off" if reply.backoff_until is not None else "withheld",
                    message=reply.withheld or "no work for this node now",
                    retry_after=round(wait_s, 3),
                    backoff_until=reply.backoff_until,
                )
            )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(wait_s, MAX_WITHHELD_WAIT_S)):
                while not self._closed:
                    await self._wake_claimer.wait()
                    self._wake_claimer.clear()

    async def _bye_if_drained(self) -> None:
        """A draining node that holds nothing more is told bye and the connection ends."""
        if self._draining and not self._holdings.held:
            with contextlib.suppress(_Closed):
                await self._send(frames.Bye(reason=frames.DRAINED_BYE_REASON))
            log.info("drained node told bye")
            await self._hang_up(1000, "drained")

    async def _offer(self, offers: list[scheduler.JobOffer]) -> None:
        """Send the node its offers, several in a `job_offers` frame to a node that reads them;
        those it cannot get (it left) are handed back."""
        if not offers:
            return
        if self._closed:
            await self._hand_back(offers)
            raise _Closed
        for offer in offers:
            self._holdings.offered(offer.job_id, offer.correlation_id, offer.attempt)
        items = [
            _encode(
                frames.JobOffer(
                    job_id=offer.job_id,
                    job_type=offer.job_type,
                    payload=offer.payload,
                    lease_until=offer.lease_until,
                    attempt=offer.attempt,
                    correlation_id=offer.correlation_id,
                    budget=offer.budget,
                )
            )
            for offer in offers
        ]
        if self._batch_frames and len(items) > 1:
            out = job_offers_frames(items, frames.MAX_OFFERS_FRAME_BYTES)
        else:
            out = [(item, 1) for item in items]
        sent = 0
        for data, count in out:
            try:
                await self._send_encoded(data)
            except _Closed:
                await self._hand_back(offers[sent:])
                raise
            sent += count

    async def _ask(self, slots: int) -> scheduler.ClaimJobsReply:
        """Jobs for this node: what is ready now, asked with the other nodes of this edge in one
        batch; when nothing is, a claim of its own that waits for work, which the node's
        departure withdraws."""
        ask = self._claim_ask(slots)
        reply = await self._edge.claim_now(ask)
        if reply.offers or reply.held >= self._holdings.concurrency or self._closed:
            return reply
        self._claim_id = claim_id = uuid.uuid4().hex
        try:
            return await self._edge.scheduler(
                "claim_jobs",
                msgspec.structs.replace(ask, wait_s=CLAIM_WAIT_S, claim_id=claim_id),
                scheduler.ClaimJobsReply,
                correlation_id=self._connection_id,
                timeout=CLAIM_WAIT_S + CLAIM_MARGIN_S,
            )
        finally:
            self._claim_id = None

    def _claim_ask(self, slots: int) -> scheduler.ClaimJobs:
        return scheduler.ClaimJobs(
            node_id=self.node_id,
            job_types=self._job_types,
            concurrency=self._holdings.concurrency,
            slots=slots,
            ip_hash=self._replica_ip_hash,
        )

    async def _hand_back(self, offers: list[scheduler.JobOffer]) -> None:
        """Jobs claimed for a node that left before they reached it: released at once, so they
        are claimable again without spending an attempt or waiting out a lease nobody holds."""
        for offer in offers:
            self._holdings.release(offer.job_id)
            with contextlib.suppress(CcnError):
                await self._edge.release_job(self.node_id, offer, "the node left before the offer reached it")
        log.info("handed back undelivered offers", jobs=[offer.job_id for offer in offers])

    # -- frames out --------------------------------------------------------------------------

    async def _send(self, frame: msgspec.Struct) -> None:
        await self._send_encoded(_encode(frame))

    async def _send_encoded(self, data: bytes) -> None:
        try:
            async with self._send_lock:
                await self._socket.send_data(data.decode())
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise _Closed from exc

    async def _send_acks(self, acks: list[frames.Ack]) -> None:
        if self._batch_frames and len(acks) > 1:
            await self._send(frames.Acks(acks=acks))
            return
        for ack in acks:
            await self._send(ack)

    async def _send_error(self, exc: CcnError, *, job_id: str | None = None, request_id: str | None = None) -> None:
        await self._send(
            frames.Error(
                code=exc.code,
                message=exc.message,
                job_id=job_id,
                field=exc.field,
                retry_after=exc.retry_after,
                request_id=request_id,
            )
        )

    async def _refuse(self, exc: CcnError, *, job_id: str | None = None, request_id: str | None = None) -> None:
        """Answer a bad frame; hang up when there have been too many."""
        log.info("bad frame", code=exc.code, reason=exc.message, field=exc.field)
        await self._send_error(exc, job_id=job_id, request_id=request_id)
        if self._budget.spend():
            await self._hang_up(WS_POLICY_VIOLATION, "too many bad frames")

    async def _turn_away(self, refusal: CcnError, code: int) -> NoReturn:
        """Refuse the connection with a typed reason and close it. Logged by the caller through
        the refusal log, not here line by line: a flood of these must not flood the log."""
        with contextlib.suppress(_Closed):
            await self._send_error(refusal)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self._socket.close(code=code, reason=refusal.message[:120])
        raise _Closed

    async def _hang_up(self, code: int, reason: str) -> NoReturn:
        with contextlib.suppress(_Closed):
            if code != 1000:
                await self._send(frames.Bye(reason=reason))
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self._socket.close(code=code, reason=reason[:120])
        if code != 1000:
            log.info("closed the connection", code=code, reason=reason)
        raise _Closed


def node_socket_handler(max_frame_bytes: int, limits: SocketLimits) -> Any:
    @websocket("/ws", name="node-socket")
    async def node_socket(socket: WebSocket[Any, Any, Any], edge: NamedDependency[EdgeContext]) -> None:
        await NodeLink(socket, edge, max_frame_bytes, limits).run()

    return node_socket
