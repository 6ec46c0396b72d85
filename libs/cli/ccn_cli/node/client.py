"""The node's side of the WebSocket protocol: Hello → Welcome, Ready, offers, results,
heartbeats, Bye; reconnecting with backoff for as long as the node runs.

Jobs outlive connections. A job keeps running when the connection drops; its result waits in
the outbox and is sent again on every new connection until the edge acknowledges it (Ack, or
an Error naming the job). Heartbeats on the new connection renew the leases of running jobs.

Asking for work: Ready(slots) says how many more jobs the node has room for now. It is sent
after Welcome, whenever room grows (a job ended, a pause ended) and, while room stays unfilled,
once per heartbeat interval, so an edge that had nothing to offer hears the node is still
waiting. A result says it too (its `ready` field): the edge then asks for the next job while it
records the result. An offer beyond the node's room is handed back with JobFail.

One task writes to the socket (results, Ready, heartbeats, Bye); the reader only decides and
wakes it, so frames never interleave."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable

import aiohttp
import msgspec
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ccn_cli.node.batching import results_frames
from ccn_cli.node.config import NodeConfig, ws_url
from ccn_cli.node.credentials import signing_key
from ccn_cli.node.decisions import (
    SHUTTING_DOWN,
    AlreadyRunning,
    ErrorAction,
    NodeView,
    Refuse,
    ResultPacer,
    decide_error,
    decide_offer,
    oversized_offer_reason,
    slots_to_ask,
)
from ccn_cli.node.documents import execute_for_job
from ccn_cli.node.edge_http import EdgeUnavailable
from ccn_cli.node.enrolment import Enrolment, NodeRefused
from ccn_cli.node.receipt_fetcher import ReceiptFetcher
from ccn_cli.node.receipts_store import receipts_dir, store_receipt
from ccn_cli.node.runner import Completed, JobRunner, Outcome, make_executor
from ccn_cli.node.vitals import NodeVitals
from ccn_core.logging import correlation, get_logger
from ccn_core.receipts import sign_result
from ccn_proto.node_protocol import (
    DRAINED_BYE_REASON,
    MAX_CONCURRENCY,
    MAX_FRAME_ITEMS,
    PROTOCOL_VERSION,
    Ack,
    Acks,
    Bye,
    Capabilities,
    Error,
    Heartbeat,
    Hello,
    JobFail,
    JobOffer,
    JobOffers,
    JobResult,
    JobResults,
    NodeFrame,
    Ready,
    ServerFrame,
    Welcome,
)
from ccn_proto.receipts import Receipt

log = get_logger("ccn.node")

MIN_HEARTBEAT_S = 0.05
MAX_HEARTBEAT_S = 300.0
MAX_PAUSE_S = 3600.0
MAX_LOGGED_BYTES = 200
_decoder = msgspec.json.Decoder(ServerFrame)


class _OfferHead(msgspec.Struct, frozen=True):
    job_id: str | None = None


class _FrameHead(msgspec.Struct, frozen=True):
    """Enough of an oversized frame to answer it: which kind, and for which jobs."""

    type: str = ""
    job_id: str | None = None
    offers: list[_OfferHead] = []


class ConnectionEnd(msgspec.Struct, frozen=True, kw_only=True):
    """Why a connection ended, and what that means for the next one."""

    reason: str
    welcomed_for_s: float | None = None
    retry_after: float | None = None
    refresh_session: bool = False
    fatal: str | None = None  # why the node must stop: the edge will never take it as it is
    drained: bool = False  # an admin drained the node: it stops, done, rather than come back


class NodeClient:
    def __init__(
        self,
        config: NodeConfig,
        enrolment: Enrolment,
        http: aiohttp.ClientSession,
        *,
        node_version: str,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._enrolment = enrolment
        self._http = http
        self._node_version = node_version
        self._jitter = jitter
        self._clock = clock
        self._runner = JobRunner(
            lambda: make_executor(config.executor, config.job_limits),
            concurrency=config.concurrency,
            timeout_s=config.job_timeout_s,
            on_outcome=self._on_outcome,
            limits=config.job_limits,
        )
        self._outbox: dict[str, JobResult | JobFail] = {}
        self._unsent: set[str] = set()
        self._correlations: dict[str, str] = {}  # job id → correlation id, while the node deals with the job
        self._attempts: dict[str, int] = {}  # job id → the offer's attempt, which the result's signature names
        self._signer: Ed25519PrivateKey | None = None  # the node's key, once enrolled (None: it has none)
        self._receipts = receipts_dir(config.home, config.name)
        # results acknowledged as `validating` get their receipts later, fetched in the background
        self._late_receipts: ReceiptFetcher | None = None
        self._outbox_empty = asyncio.Event()
        self._outbox_empty.set()
        self._outbox_limit = max(16, 4 * config.concurrency)
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._hurry = asyncio.Event()  # a second stop request: no grace period
        self._drained = asyncio.Event()
        self._paused_until = 0.0
        self._result_pacer = ResultPacer()
        self._last_ready: int | None = None  # what the last Ready asked for; None once an offer came
        self._session_refreshed = False
        self._vitals = NodeVitals(clock)
        self._edge_retry_after: float | None = None  # what the edge's last HTTP refusal asked for

    def request_stop(self) -> None:
        """Stop taking jobs, finish (or hand back) the running ones, say Bye, return from run()."""
        if self._stop.is_set():
            log.info("stopping now: running jobs are handed back")
            self._hurry.set()
            return
        log.info("stopping", running=len(self._runner.running), grace_s=self._config.grace_s)
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        """Until stopped; raises NodeRefused when the edge will not take this node."""
        drain = asyncio.create_task(self._drain_when_stopped(), name="node-drain")
        self._late_receipts = ReceiptFetcher(
            self._enrolment.job_receipt, self._receipts, lambda: self._enrolment.credentials.node_public_id
        )
        late_receipts = asyncio.create_task(self._late_receipts.run(self._drained), name="node-receipts")
        backoff = self._config.backoff
        try:
            while not await self._enrolled():
                backoff = backoff.after_failure()
                if await self._sleep(backoff.delay_s(self._jitter(), self._edge_retry_after)):
                    return
            backoff = backoff.reset()
            while not self._drained.is_set():
                end = await self._connect_once()
                if end.fatal is not None:
                    raise NodeRefused(end.fatal)
                if end.drained:
                    log.info("the network drained this node: it finished its jobs and stops")
                    return
                if end.refresh_session and not await self._refresh_session():
                    end = msgspec.structs.replace(end, welcomed_for_s=None, retry_after=self._edge_retry_after)
                if end.welcomed_for_s is None:
                    backoff = backoff.after_failure()
                else:
                    backoff = backoff.after_connection(end.welcomed_for_s)
                delay = backoff.delay_s(self._jitter(), end.retry_after)
                if not self._drained.is_set():
                    log.warning("disconnected", reason=end.reason, retry_in_s=round(delay, 3))
                if await self._sleep(delay):
                    return
        finally:
            drain.cancel()
            late_receipts.cancel()
            self._runner.shutdown()

    async def _enrolled(self) -> bool:
        try:
            credentials = await self._enrolment.enrol()
        except EdgeUnavailable as exc:
            log.warning("edge unavailable", detail=exc.message, retry_after=exc.retry_after)
            self._edge_retry_after = exc.retry_after  # a 429's or 503's Retry-After: not sooner
            return False
        self._signer = signing_key(credentials)
        log.info("enrolled", node_public_id=credentials.node_public_id, signs_results=self._signer is not None)
        return True

    async def _refresh_session(self) -> bool:
        try:
            await self._enrolment.refresh_session()
        except EdgeUnavailable as exc:
            log.warning("could not start a session", detail=exc.message, retry_after=exc.retry_after)
            self._edge_retry_after = exc.retry_after
            return False
        self._session_refreshed = True
        return True

    async def _sleep(self, delay_s: float) -> bool:
        """Wait `delay_s`, or less if the node finishes draining meanwhile; True if it has."""
        try:
            await asyncio.wait_for(self._drained.wait(), timeout=delay_s)
        except TimeoutError:
            return False
        return True

    # --- one connection ---------------------------------------------------------------------

    async def _connect_once(self) -> ConnectionEnd:
        if not self._enrolment.credentials.session_token and not await self._refresh_session():
            return ConnectionEnd(reason="no session token, and none could be had")
        try:
            async with asyncio.timeout(self._config.hello_timeout_s):  # the upgrade, not the connection's life
                ws = await self._http.ws_connect(
                    ws_url(self._config.edge_url),
                    max_msg_size=self._config.max_frame_bytes,
                    heartbeat=self._config.ping_interval_s,
                    timeout=aiohttp.ClientWSTimeout(ws_close=self._config.ack_wait_s),
                    headers={"User-Agent": f"ccn-node/{self._node_version}"},
                )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return ConnectionEnd(reason=f"cannot connect: {type(exc).__name__}: {exc}")
        try:
            welcome_or_end = await self._handshake(ws)
            if isinstance(welcome_or_end, ConnectionEnd):
                return welcome_or_end
            return await self._serve(ws, welcome_or_end)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return ConnectionEnd(reason=f"{type(exc).__name__}: {exc}")
        finally:
            await ws.close()

    def _still_held(self) -> list[str]:
        """What this node holds from an earlier connection, as its hello names it: the jobs it
        runs, then those whose result or failure waits to be accepted. The rest go back."""
        held = list(dict.fromkeys([*sorted(self._runner.running), *self._outbox]))
        return held[:MAX_CONCURRENCY]

    async def _handshake(self, ws: aiohttp.ClientWebSocketResponse) -> Welcome | ConnectionEnd:
        credentials = self._enrolment.credentials
        hello = Hello(
            session_token=credentials.session_token or "-",
            node_version=self._node_version,
            protocol_version=PROTOCOL_VERSION,
            capabilities=Capabilities(
                job_types=list(self._config.job_types), concurrency=self._config.concurrency, batch_frames=True
            ),
            running=self._still_held(),
        )
        self._vitals.forget_exchanges()
        await ws.send_str(msgspec.json.encode(hello).decode())
        self._vitals.sent("hello")
        message = await ws.receive(timeout=self._config.hello_timeout_s)
        self._vitals.answered("hello")
        if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            return ConnectionEnd(reason=f"connection closed before welcome ({message.type.name})")
        try:
            frame = _decoder.decode(message.data)
        except msgspec.DecodeError as exc:
            return ConnectionEnd(reason=f"malformed reply to hello: {exc}")
        if isinstance(frame, Welcome):
            self._session_refreshed = False
            return frame
        if not isinstance(frame, Error):
            return ConnectionEnd(reason=f"edge answered hello with {type(frame).__name__}")
        action = decide_error(frame, welcomed=False)
        reason = f"hello refused: {frame.code}: {frame.message}"
        if action is ErrorAction.REFRESH_SESSION and self._session_refreshed:
            # a session token made a moment ago is refused too: the node itself is
            return ConnectionEnd(reason=reason, fatal=str(self._enrolment.refused(reason)))
        if action is ErrorAction.FATAL:
            return ConnectionEnd(reason=reason, fatal=f"the edge refuses this node's connection: {reason}")
        return ConnectionEnd(
            reason=reason, retry_after=frame.retry_after, refresh_session=action is ErrorAction.REFRESH_SESSION
        )

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse, welcome: Welcome) -> ConnectionEnd:
        started = self._clock()
        log.info(
            "connected",
            node_public_id=welcome.node_public_id,
            session_id=welcome.session_id,
            heartbeat_interval_s=welcome.heartbeat_interval_s,
        )
        interval = min(MAX_HEARTBEAT_S, max(MIN_HEARTBEAT_S, welcome.heartbeat_interval_s))
        self._unsent = set(self._outbox)
        self._last_ready = None
        self._wake.set()
        writer = asyncio.create_task(self._write(ws, interval), name="node-writer")
        reader = asyncio.create_task(self._read(ws), name="node-reader")
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if not reader.done():
                # the writer said bye, or a send failed because the connection is gone: either way
                # the socket closes, and the reader hears of it
                if not writer.cancelled() and (error := writer.exception()) is not None:
                    log.warning("send failed", error=f"{type(error).__name__}: {error}")
                await ws.close()
            end = await reader
        finally:
            reader.cancel()
            writer.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
            if not ws.closed:
                await ws.close()
        return msgspec.structs.replace(end, welcomed_for_s=self._clock() - started)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> ConnectionEnd:
        async for message in ws:
            if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                break
            data: bytes = message.data.encode() if isinstance(message.data, str) else message.data
            end = self._on_frame(data)
            if end is not None:
                return end
        if self._drained.is_set():
            return ConnectionEnd(reason="node said bye")
        return ConnectionEnd(reason=f"connection closed by the edge (code {ws.close_code})")

    def _on_frame(self, data: bytes) -> ConnectionEnd | None:
        if len(data) > self._config.max_offer_bytes:
            self._on_oversized(data)
            return None
        try:
            frame = _decoder.decode(data)
        except msgspec.DecodeError as exc:
            log.warning(
                "malformed frame from the edge",
                error=str(exc),
                frame=data[:MAX_LOGGED_BYTES].decode("utf-8", "replace"),
            )
            return None
        match frame:
            case JobOffer():
                self._on_offer(frame)
            case JobOffers(offers=offers):
                for offer in offers:
                    self._on_offer(offer)
            case Ack():
                self._on_ack(frame)
            case Acks(acks=acks):
                for ack in acks:
                    self._on_ack(ack)
            case Error():
                return self._on_error(frame)
            case Bye(reason=reason):
                return ConnectionEnd(
                    reason=f"edge said bye: {reason or 'no reason given'}", drained=reason == DRAINED_BYE_REASON
                )
            case Welcome():
                log.warning("unexpected second welcome ignored")
        return None

    def _on_ack(self, ack: Ack) -> None:
        self._vitals.answered(ack.job_id)
        with self._job_context(ack.job_id):
            if ack.receipt is not None:
                self._keep_receipt(ack.job_id, ack.receipt)
            elif ack.status == "validating" and self._late_receipts is not None:
                self._late_receipts.remember(ack.job_id, self._attempts.get(ack.job_id))
            if self._forget(ack.job_id):
                log.info("acknowledged", status=ack.status)
        self._wake.set()

    def _keep_receipt(self, job_id: str, receipt: Receipt) -> None:
        """Store a receipt for this node's own result; anything else is logged and dropped."""
        node_id = self._enrolment.credentials.node_public_id
        if receipt.job_id != job_id or receipt.node_id != node_id:
            log.warning(
                "receipt for another job or node ignored", receipt_job=receipt.job_id, receipt_node=receipt.node_id
            )
            return
        try:
            path = store_receipt(self._receipts, receipt)
        except OSError as exc:
            log.warning("receipt not stored", error=str(exc))
            return
        log.info("receipt stored", path=str(path), verdict=receipt.verdict, key_id=receipt.key_id)

    def _on_oversized(self, data: bytes) -> None:
        try:
            head = msgspec.json.decode(data, type=_FrameHead)
        except msgspec.DecodeError:
            head = _FrameHead()
        reason = oversized_offer_reason(len(data), self._config.max_offer_bytes)
        log.warning("oversized frame from the edge", frame_type=head.type, job_id=head.job_id, bytes=len(data))
        offered = [head.job_id] if head.type == "job_offer" else []
        if head.type == "job_offers":
            offered = [offer.job_id for offer in head.offers[:MAX_FRAME_ITEMS]]
        for job_id in offered:
            if job_id:
                self._last_ready = None
                self._queue(JobFail(job_id=job_id[:128], reason=reason))

    def _on_offer(self, offer: JobOffer) -> None:
        self._last_ready = None
        view = NodeView(
            job_types=frozenset(self._config.job_types),
            running=self._runner.running,
            free_slots=self._runner.free_slots,
            draining=self._stop.is_set(),
        )
        decision = decide_offer(view, offer)
        self._correlations[offer.job_id] = offer.correlation_id
        self._attempts[offer.job_id] = offer.attempt
        with correlation(offer.correlation_id, job_id=offer.job_id):
            match decision:
                case Refuse(reason=reason):
                    log.info("offer refused", reason=reason)
                    self._queue(JobFail(job_id=offer.job_id, reason=reason))
                case AlreadyRunning():
                    log.info("offer repeated for a running job")
                case _:
                    token = self._enrolment.credentials.session_token
                    self._vitals.job_started(offer.job_id)
                    execute = execute_for_job(
                        self._config, token, offer.job_id, self._node_version, offer.correlation_id
                    )
                    self._runner.start(offer, execute)

    def _on_error(self, error: Error) -> ConnectionEnd | None:
        action = decide_error(error, welcomed=True)
        fields = {
            "code": error.code,
            "message": error.message,
            "job_id": error.job_id,
            "retry_after": error.retry_after,
        }
        match action:
            case ErrorAction.STOP_JOB:
                job_id = error.job_id or ""
                with self._job_context(job_id):
                    stopped = self._runner.stop(job_id)
                    self._forget(job_id)
                    log.warning("edge stopped a job", stopped=stopped, **fields)
                self._wake.set()
            case ErrorAction.PAUSE:
                self._pause(error.retry_after)
                # a refused ready was not heard: ask again once the pause is over
                self._last_ready = None
                log.warning("edge asks the node to back off", **fields)
            case ErrorAction.RESEND_LATER:
                job_id = error.job_id or ""
                pause = self._pause(error.retry_after)
                if error.code == "rate_limited":
                    self._result_pacer.refused(pause, self._clock())
                asyncio.get_running_loop().call_later(pause, self._resend, job_id)
                with self._job_context(job_id):
                    log.warning("edge could not take the job's outcome yet; it is kept and sent again", **fields)
            case ErrorAction.REFRESH_SESSION:
                return ConnectionEnd(reason=f"session refused: {error.code}: {error.message}", refresh_session=True)
            case _:
                log.warning("edge reported an error", **fields)
        return None

    def _pause(self, retry_after: float | None) -> float:
        """Ask for no work for `retry_after` seconds (bounded); returns the pause."""
        pause = min(MAX_PAUSE_S, max(0.0, retry_after or 0.0))
        self._paused_until = max(self._paused_until, self._clock() + pause)
        asyncio.get_running_loop().call_later(pause, self._wake.set)
        return pause

    def _resend(self, job_id: str) -> None:
        """Send what the outbox holds for the job again, if the edge has not answered it meanwhile
        (a new connection resends everything unacknowledged anyway)."""
        if job_id in self._outbox:
            self._unsent.add(job_id)
            self._wake.set()

    # --- the one writer ---------------------------------------------------------------------

    async def _write(self, ws: aiohttp.ClientWebSocketResponse, interval: float) -> None:
        next_beat = self._clock() + interval
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, next_beat - self._clock()))
            self._wake.clear()
            await self._send_outbox(ws)
            if self._drained.is_set():
                await self._send(ws, Bye(reason=SHUTTING_DOWN))
                log.info("said bye")
                await ws.close()
                return
            beat = self._clock() >= next_beat
            if beat:
                await self._send(ws, Heartbeat(job_ids=sorted(self._runner.running), metrics=self._vitals.metrics()))
                next_beat = self._clock() + interval
            await self._ask_for_work(ws, repeat=beat)

    async def _send_outbox(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Unsent failures, then unsent results: several at once go as `results` frames, or one at
        a time while the node paces its results after a rate-limit refusal (ResultPacer). The
        last result frame carries the node's room (`ready`), so the edge asks for the next jobs
        while it records these, one round trip instead of two."""
        unsent = [self._outbox[job_id] for job_id in self._outbox if job_id in self._unsent]
        results = [frame for frame in unsent if isinstance(frame, JobResult)]
        allowed = self._result_pacer.allowed(self._clock())
        held_back = allowed is not None and len(results) > allowed
        if held_back:
            results = results[:allowed]
        for frame in unsent:
            if isinstance(frame, JobFail):
                await self._send(ws, frame)
                self._unsent.discard(frame.job_id)
        batches: list[JobResult | JobResults] = (
            list(results_frames(results, self._config.max_result_bytes)) if len(results) > 1 else list(results)
        )
        for index, batch in enumerate(batches):
            if index == len(batches) - 1:
                slots = self._slots_to_ask()
                if slots:
                    batch = msgspec.structs.replace(batch, ready=slots)
                    self._last_ready = slots
            await self._send(ws, batch)
            self._result_pacer.sent(self._clock())
            for job_id in [batch.job_id] if isinstance(batch, JobResult) else [item.job_id for item in batch.results]:
                self._unsent.discard(job_id)
        if held_back:  # the rest wait their turn: look again when the next may go
            asyncio.get_running_loop().call_later(self._result_pacer.wait_s(self._clock()), self._wake.set)

    def _slots_to_ask(self) -> int:
        return slots_to_ask(
            self._runner.free_slots, draining=self._stop.is_set(), paused=self._clock() < self._paused_until
        )

    async def _ask_for_work(self, ws: aiohttp.ClientWebSocketResponse, *, repeat: bool) -> None:
        slots = self._slots_to_ask()
        if slots == 0:
            return
        if slots != self._last_ready or repeat:
            await self._send(ws, Ready(slots=slots))
            self._last_ready = slots

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, frame: NodeFrame) -> None:
        await ws.send_str(msgspec.json.encode(frame).decode())
        match frame:  # a result's ack times the node's round trip to the edge
            case JobResult(job_id=job_id):
                self._vitals.sent(job_id)
            case JobResults(results=results):
                for item in results:
                    self._vitals.sent(item.job_id)

    # --- outcomes and shutdown --------------------------------------------------------------

    def _on_outcome(self, outcome: Outcome) -> None:
        """Queue the job's result or failure, with the usage measured for it."""
        self._vitals.job_ended(outcome.job_id)
        if isinstance(outcome, Completed):
            attempt = self._attempts.get(outcome.job_id)
            signature = None
            if self._signer is not None and attempt is not None:
                signature = sign_result(self._signer, outcome.job_id, attempt, outcome.checksum)
            frame = JobResult(
                job_id=outcome.job_id,
                result=outcome.result,
                checksum=outcome.checksum,
                usage=outcome.usage,
                signature=signature,
            )
            size = len(msgspec.json.encode(frame))
            if size <= self._config.max_result_bytes:
                self._queue(frame)
                return
            reason = f"result of {size} bytes is over this node's limit of {self._config.max_result_bytes} bytes"
            self._queue(JobFail(job_id=outcome.job_id, reason=reason, usage=outcome.usage))
        else:
            self._queue(JobFail(job_id=outcome.job_id, reason=outcome.reason, kind=outcome.kind, usage=outcome.usage))

    def _queue(self, frame: JobResult | JobFail) -> None:
        """Send on this connection or the next, until the edge answers for the job."""
        while len(self._outbox) >= self._outbox_limit:
            dropped = next(iter(self._outbox))
            self._forget(dropped)
            log.warning("outbox full: oldest unacknowledged frame dropped", job_id=dropped)
        self._outbox[frame.job_id] = frame
        self._unsent.add(frame.job_id)
        self._outbox_empty.clear()
        self._wake.set()

    def _job_context(self, job_id: str) -> contextlib.AbstractContextManager[None]:
        correlation_id = self._correlations.get(job_id)
        if correlation_id is None:
            return structlog.contextvars.bound_contextvars(job_id=job_id)
        return correlation(correlation_id, job_id=job_id)

    def _forget(self, job_id: str) -> bool:
        """The edge has answered for this job: nothing more to send about it."""
        frame = self._outbox.pop(job_id, None)
        self._unsent.discard(job_id)
        if job_id not in self._runner.running:
            self._correlations.pop(job_id, None)
            self._attempts.pop(job_id, None)
        if not self._outbox:
            self._outbox_empty.set()
        return frame is not None

    async def _drain_when_stopped(self) -> None:
        await self._stop.wait()
        idle = asyncio.create_task(self._runner.wait_idle(self._config.grace_s))
        hurry = asyncio.create_task(self._hurry.wait())
        await asyncio.wait({idle, hurry}, return_when=asyncio.FIRST_COMPLETED)
        idle.cancel()
        hurry.cancel()
        for job_id in self._runner.stop_all():
            self._queue(JobFail(job_id=job_id, reason=SHUTTING_DOWN))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._outbox_empty.wait(), timeout=self._config.ack_wait_s)
        if self._outbox:
            log.warning("leaving without acknowledgement", job_ids=sorted(self._outbox))
        self._drained.set()
        self._wake.set()
