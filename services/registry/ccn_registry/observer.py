"""The governance observer: turns the job stream, the consensus disagreements of the result
stream and the telemetry stream into the node's record (record_work) and its liveness
(observe_liveness), from one registry replica at a time.

Why one owner (the `governance-observer` key of the owners bucket, ccn_core.ownership) rather
than a durable consumer shared by the replicas: a window sums a node's outcomes across jobs and
a completion is judged against the job's claim and the results set aside for it, and liveness
is the silence of a node's *last* sample; replicas sharing a consumer would each see a part of
each. A standby takes over within the owners bucket's TTL.

Nothing lost, nothing twice. A window of CCN_JOBS is cut at stream sequences, and its cut is
written to the checkpoint (the `governance-work` key of the checkpoints bucket, fenced by its
revision: a deposed owner's write fails) *before* its records are sent; then the records are
sent, each under the window's key (work_windows.window_key), and only then is the checkpoint
moved past the window. An observer that dies in between leaves the cut behind: the next one
reads that same run of events again, sends the same records under the same keys, and skips the
nodes whose last node.work_recorded is already the window's (so even past the stream's
duplicate window nothing is recorded twice).

CCN_RESULTS is read the same way, by a reader of its own with its own checkpoint
(`governance-disagreements`) and window keys (`results:<first>-<last>`): each
consensus.node_disagreed counts against its node (work_windows.DisagreementAggregator).

Liveness is rebuilt from the stream on each takeover: one sample per node (the last, JetStream's
last-per-subject delivery), then every new one; every node is observed once, then whenever its
silence crosses a threshold of the health policy or it speaks again (ccn_registry.liveness).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol

import msgspec
import nats.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from ccn_core import ids, subjects
from ccn_core.commands import CommandClient
from ccn_core.errors import CcnError, NotFound, Unavailable
from ccn_core.eventstore import HDR_MSG_ID, StoredEvent
from ccn_core.logging import get_logger
from ccn_core.ownership import Ownership
from ccn_core.projection import consumer_from_checkpoint
from ccn_core.pull import BatchPuller, ConsumerGone, delivered_event
from ccn_core.service import Runtime
from ccn_core.stopping import cancel_until_done
from ccn_core.topology import (
    CHECKPOINTS,
    GOVERNANCE_DISAGREEMENTS,
    GOVERNANCE_WORK,
    JOBS,
    NODES,
    OWNERS,
    TELEMETRY,
    ConsumerSpec,
)
from ccn_proto.consensus import ConsensusDecided, NodeDisagreed, consensus_steps
from ccn_proto.envelope import HEADER_TYPE, Envelope, event_tags
from ccn_proto.jobs import JobClaimed, JobResultSetAside, JobResultSubmittedBytes
from ccn_proto.nodes import HeartbeatSample, NodeWorkRecorded
from ccn_proto.registry import NodeActionReply, ObserveLiveness, RecordWork
from ccn_registry.liveness import LivenessBook, Observation
from ccn_registry.work_windows import (
    Claim,
    DisagreementAggregator,
    Window,
    WorkAggregator,
    budget_of,
    decode_budgets,
    window_key,
)
from ccn_registry.work_windows import (
    ObservedJobEvent as ObservedJobEventType,
)

log = get_logger("ccn.registry.observer")

OWNER_KEY: Final = "governance-observer"
CHECKPOINT_KEY: Final = "governance-work"
DISAGREEMENTS_CHECKPOINT_KEY: Final = "governance-disagreements"
_HEARTBEATS: Final = "ccn.telemetry.*.heartbeat"
_SENDS_IN_FLIGHT: Final = 32
_RETRY_MAX_S: Final = 5.0
_BUDGETS_FRESH_S: Final = 30.0
_STOP_WAIT_S: Final = 3.0  # longer than a pull waits for events

_decode_job_event = msgspec.json.Decoder(Envelope[ObservedJobEventType]).decode
# the consumer reads every job event (a dense read: see GOVERNANCE_WORK); only these count
OBSERVED_TYPES: Final = event_tags(ObservedJobEventType)
_decode_heartbeat = msgspec.json.Decoder(Envelope[HeartbeatSample]).decode
_decode_claim = msgspec.json.Decoder(Envelope[JobClaimed]).decode
_decode_disagreement = msgspec.json.Decoder(Envelope[NodeDisagreed | ConsensusDecided]).decode


class ObserverOptions(msgspec.Struct, frozen=True, kw_only=True):
    window_s: float = 10.0  # a window of job outcomes closes this long after its first event
    liveness_tick_s: float = 1.0  # how often silences are measured
    batch_size: int = 1000


class WorkCheckpoint(msgspec.Struct, frozen=True, kw_only=True):
    """CCN_JOBS up to `done_seq` is recorded; a window cut at pending_first..pending_last may
    have been sent in part (0, 0: none)."""

    done_seq: int = 0
    pending_first: int = 0
    pending_last: int = 0


class LostCheckpoint(RuntimeError):
    """Another owner wrote the checkpoint: this one was deposed."""


class CheckpointKeeper:
    def __init__(self, bucket: KeyValue, key: str = CHECKPOINT_KEY) -> None:
        self._bucket = bucket
        self._key = key
        self._revision: int | None = None

    async def load(self) -> WorkCheckpoint:
        try:
            entry = await self._bucket.get(self._key)
        except KeyNotFoundError:
            self._revision = None
            return WorkCheckpoint()
        self._revision = entry.revision
        return msgspec.json.decode(entry.value or b"{}", type=WorkCheckpoint)

    async def save(self, checkpoint: WorkCheckpoint) -> None:
        value = msgspec.json.encode(checkpoint)
        try:
            if self._revision is None:
                self._revision = await self._bucket.create(self._key, value)
            else:
                self._revision = await self._bucket.update(self._key, value, last=self._revision)
        except KeyWrongLastSequenceError as exc:
            raise LostCheckpoint("the governance checkpoint was written by another observer") from exc


class WindowAggregator(Protocol):
    def close(self) -> Window: ...


@dataclass(frozen=True)
class WindowedStream:
    """One stream the observer keeps windows of: its consumer, its checkpoint key, the name its
    window keys carry, and how its events are read (`prepare` once, after loading the checkpoint;
    `observe` each event, in stream order)."""

    spec: ConsumerSpec
    checkpoint_key: str
    key_name: str
    aggregator: Callable[[], WindowAggregator]
    prepare: Callable[[WindowAggregator, WorkCheckpoint], Awaitable[None]]
    observe: Callable[[WindowAggregator, StoredEvent], Awaitable[None]]


class Stopped(Exception):
    """This observer stands down: what it was doing is left to its checkpoint and its successor."""


async def _until_sent(
    call: Callable[[], Awaitable[NodeActionReply]], what: str, node_id: str, stop: asyncio.Event
) -> bool:
    """Retry what may pass later (the registry or NATS away) until taken or this observer
    stops (Stopped); False when the command is refused for good (logged: a node unknown to the
    registry, a record it will never take)."""
    delay = 0.2
    while True:
        if stop.is_set():
            raise Stopped(what)
        try:
            await call()
            return True
        except Unavailable as exc:
            log.warning("observer command not taken; retrying", command=what, node_id=node_id, error=exc.message)
        except NotFound as exc:
            log.warning(
                "observer command for an unknown node dropped", command=what, node_id=node_id, error=exc.message
            )
            return False
        except CcnError as exc:
            log.error("observer command refused; dropped", command=what, node_id=node_id, error=exc.message)
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await stop.wait()
        delay = min(_RETRY_MAX_S, delay * 2)


async def _bounded(calls: Sequence[Callable[[], Awaitable[None]]]) -> None:
    gate = asyncio.Semaphore(_SENDS_IN_FLIGHT)

    async def one(call: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await call()

    await asyncio.gather(*(one(call) for call in calls))


class GovernanceObserver:
    def __init__(
        self,
        runtime: Runtime,
        options: ObserverOptions | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._runtime = runtime
        self._options = options or ObserverOptions()
        self._clock = clock
        self._commands = CommandClient(runtime.nc, timeout=runtime.settings.command_timeout_s)
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._budgets_read: dict[str, float] = {}
        # when each node was last heard from: its heartbeats (the liveness watch) and the results
        # it submits (the work watch)
        self._liveness = LivenessBook()
        self.ownership = Ownership(
            runtime.js,
            bucket=OWNERS.bucket,
            key=OWNER_KEY,
            owner_id=runtime.replica,
            ttl_s=OWNERS.ttl_s,
            on_gain=self._gain,
            on_loss=self._loss,
        )
        self.windows_recorded = 0
        self.records_sent = 0
        self.observations_sent = 0

    async def _gain(self) -> None:
        log.info("governance observer active", replica=self._runtime.replica)
        self._stop = asyncio.Event()
        self._liveness = LivenessBook()
        self._tasks = [
            asyncio.create_task(self._keep_running(self._watch_work, "work"), name="observer-work"),
            asyncio.create_task(
                self._keep_running(self._watch_disagreements, "disagreements"), name="observer-disagreements"
            ),
            asyncio.create_task(self._keep_running(self._watch_liveness, "liveness"), name="observer-liveness"),
        ]

    async def _loss(self, lost: bool) -> None:
        """Asked to stop first, then cancelled: nats-py's fetch can swallow a cancellation. A
        window cut but not finished is finished by the next owner, from its checkpoint."""
        self._stop.set()
        tasks = set(self._tasks)
        _, pending = await asyncio.wait(tasks, timeout=_STOP_WAIT_S) if tasks else (set(), set())
        await cancel_until_done(pending, every_s=_STOP_WAIT_S)
        self._tasks = []
        log.info("governance observer stood down", lost=lost)

    async def _keep_running(self, part: Callable[[], Awaitable[None]], name: str) -> None:
        while not self._stop.is_set():
            try:
                await part()
            except Stopped:
                return
            except LostCheckpoint:
                log.error("governance checkpoint taken by another observer; this one stops", part=name)
                return
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("governance observer part failed; starting it again", part=name)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._stop.wait()

    # -- job outcomes → record_work ------------------------------------------------------------

    async def _watch_work(self) -> None:
        await self._watch_windows(
            WindowedStream(
                spec=GOVERNANCE_WORK,
                checkpoint_key=CHECKPOINT_KEY,
                key_name="jobs",
                aggregator=WorkAggregator,
                prepare=self._prepare_work,
                observe=self._observe,
            )
        )

    async def _watch_disagreements(self) -> None:
        await self._watch_windows(
            WindowedStream(
                spec=GOVERNANCE_DISAGREEMENTS,
                checkpoint_key=DISAGREEMENTS_CHECKPOINT_KEY,
                key_name="results",
                aggregator=DisagreementAggregator,
                prepare=_nothing_to_prepare,
                observe=_observe_disagreement,
            )
        )

    async def _prepare_work(self, aggregator: WindowAggregator, checkpoint: WorkCheckpoint) -> None:
        assert isinstance(aggregator, WorkAggregator)
        if checkpoint.done_seq:
            # results set aside before the start: a job completing later is compared with them
            store = self._runtime.store
            async for batch in store.scan(JOBS.name, "ccn.job.*.result_set_aside", 1, up_to_seq=checkpoint.done_seq):
                for stored in batch:
                    self._feed_set_aside(aggregator, stored)

    async def _watch_windows(self, source: WindowedStream) -> None:
        keeper = CheckpointKeeper(await self._runtime.js.key_value(CHECKPOINTS.bucket), source.checkpoint_key)
        checkpoint = await keeper.load()
        aggregator = source.aggregator()
        await source.prepare(aggregator, checkpoint)
        puller = await self._window_consumer(source.spec, checkpoint.done_seq)
        position = checkpoint.done_seq
        last_msg: Msg | None = None
        opened: float | None = None
        recovering = checkpoint.pending_last > 0
        if recovering:
            log.info("resuming a window cut before", first=checkpoint.pending_first, last=checkpoint.pending_last)
        while not self._stop.is_set():
            try:
                msgs = await puller.fetch(self._options.batch_size, timeout=0.5)
            except (ConsumerGone, NotFoundError, nats.js.errors.ServiceUnavailableError) as exc:
                log.warning("observer consumer lost; recreating", reason=str(exc), consumer=source.spec.durable)
                puller = await self._window_consumer(source.spec, position)
                continue
            for msg in msgs:
                stored = delivered_event(msg)
                if stored.seq <= position:
                    continue  # delivered again (the consumer was recreated)
                if recovering and stored.seq > checkpoint.pending_last:
                    checkpoint = await self._flush(source, keeper, checkpoint, aggregator, last_msg)
                    recovering, opened = False, None
                await source.observe(aggregator, stored)
                position, last_msg = stored.seq, msg
                opened = opened if opened is not None else time.monotonic()
            if recovering:
                # the cut window is finished whole, never in part: its key names all of it
                if position >= checkpoint.pending_last:
                    checkpoint = await self._flush(source, keeper, checkpoint, aggregator, last_msg)
                    recovering, opened = False, None
            elif opened is not None and time.monotonic() - opened >= self._options.window_s:
                checkpoint = await self._flush(source, keeper, checkpoint, aggregator, last_msg)
                opened = None

    async def _window_consumer(self, spec: ConsumerSpec, done_seq: int) -> BatchPuller:
        return await consumer_from_checkpoint(self._runtime.js, spec, done_seq, ack_wait_s=120)

    def _feed_set_aside(self, aggregator: WorkAggregator, stored: StoredEvent) -> None:
        try:
            envelope = _decode_job_event(stored.data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if isinstance(envelope.data, JobResultSetAside):
            aggregator.learn_set_aside(envelope.aggregate_id, envelope.data.node_id, envelope.data.checksum)

    async def _observe(self, aggregator: WindowAggregator, stored: StoredEvent) -> None:
        assert isinstance(aggregator, WorkAggregator)
        kind = stored.headers.get(HEADER_TYPE)
        if kind is not None and kind not in OBSERVED_TYPES:
            return  # job.created, or a type this release does not count
        try:
            envelope = _decode_job_event(stored.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            # the projections dead-letter it; here it simply counts for no one
            log.error("job event skipped by the observer: it does not decode", seq=stored.seq, error=str(exc))
            return
        event, job_id = envelope.data, envelope.aggregate_id
        if isinstance(event, JobResultSubmittedBytes):
            if not aggregator.knows_claim(job_id, event.node_id, event.attempt):
                claim = await self._claim_before(job_id, event.node_id, event.attempt, stored.seq)
                if claim is not None:
                    aggregator.learn_claim(job_id, claim)
            if event.usage is not None:
                await self._refresh_budgets(aggregator, event.node_id)
            self._liveness.heard_from(event.node_id, envelope.occurred_at)
        aggregator.observe(stored.seq, job_id, envelope.occurred_at, event)

    async def _claim_before(self, job_id: str, node_id: str, attempt: int, seq: int) -> Claim | None:
        """The job's claim by this node for this attempt, from the stream (it came before this
        observer started, or was forgotten)."""
        try:
            claims = await self._runtime.store.read(JOBS.name, subjects.event("job", job_id, "claimed"))
        except ValueError:
            return None  # not an id a subject can carry
        found: Claim | None = None
        for stored in claims:
            if stored.seq >= seq:
                break
            with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                envelope = _decode_claim(stored.data)
                claimed = envelope.data
                if (claimed.node_id, claimed.attempt) == (node_id, attempt):
                    found = Claim(node_id=node_id, attempt=attempt, at=envelope.occurred_at)
        return found

    async def _refresh_budgets(self, aggregator: WorkAggregator, node_id: str) -> None:
        """The node's budgets as its last node.budgets_set says, read again at most every
        _BUDGETS_FRESH_S (budgets change by an admin's hand, rarely)."""
        now = time.monotonic()
        read_at = self._budgets_read.get(node_id)
        if read_at is not None and now - read_at < _BUDGETS_FRESH_S and node_id in aggregator.budgets:
            return
        if len(self._budgets_read) > 100_000:
            self._budgets_read.clear()
        try:
            subject = subjects.node_event(node_id, "budgets_set")
            message = await self._runtime.js.get_last_msg(NODES.name, subject)
            aggregator.budgets[node_id] = budget_of(decode_budgets(message.data or b""))
        except NotFoundError:
            aggregator.budgets[node_id] = None
        except (ValueError, msgspec.DecodeError, msgspec.ValidationError):
            aggregator.budgets[node_id] = None
        self._budgets_read[node_id] = now

    async def _flush(
        self,
        source: WindowedStream,
        keeper: CheckpointKeeper,
        checkpoint: WorkCheckpoint,
        aggregator: WindowAggregator,
        last_msg: Msg | None,
    ) -> WorkCheckpoint:
        """Record the open window (or finish the one the checkpoint says was cut) and move the
        checkpoint past it."""
        window = aggregator.close()
        recovering = checkpoint.pending_last > 0
        if recovering:
            first, last = checkpoint.pending_first, checkpoint.pending_last
        elif window.empty:
            return checkpoint
        else:
            first, last = window.first_seq, window.last_seq
        records = {} if window.empty else window.records()
        key = window_key(first, last, source.key_name)
        if records and not recovering:
            await keeper.save(WorkCheckpoint(done_seq=checkpoint.done_seq, pending_first=first, pending_last=last))
        sends = [
            functools.partial(self._record, node_id, work, key, check_first=recovering)
            for node_id, work in records.items()
        ]
        await _bounded(sends)
        done = WorkCheckpoint(done_seq=max(last, checkpoint.done_seq))
        await keeper.save(done)
        if last_msg is not None:
            with contextlib.suppress(nats.errors.Error):
                await last_msg.ack()  # AckPolicy.ALL: the consumer's lag shows what is left
        self.windows_recorded += 1
        log.info(
            "window recorded",
            stream=source.key_name,
            first=first,
            last=last,
            nodes=len(records),
            recovered=recovering,
        )
        return done

    async def _record(self, node_id: str, work: NodeWorkRecorded, key: str, *, check_first: bool) -> None:
        if check_first and await self._already_recorded(node_id, key):
            log.info("window already recorded for node; not sent again", node_id=node_id, key=key)
            return
        command = RecordWork(node_id=node_id, work=work, key=key)
        correlation_id = ids.derived_event_id("observer", key)

        async def call() -> NodeActionReply:
            return await self._commands.call(
                "registry", "record_work", command, NodeActionReply, correlation_id=correlation_id
            )

        if await _until_sent(call, "record_work", node_id, self._stop):
            self.records_sent += 1

    async def _already_recorded(self, node_id: str, key: str) -> bool:
        """The node's last node.work_recorded is this window's (the id the registry derives)."""
        try:
            message = await self._runtime.js.get_last_msg(NODES.name, subjects.node_event(node_id, "work_recorded"))
        except (NotFoundError, ValueError):
            return False
        event_id = (message.headers or {}).get(HDR_MSG_ID)
        return event_id == ids.derived_event_id("node", node_id, f"work:{key}", "0")

    # -- telemetry → observe_liveness ----------------------------------------------------------

    async def _watch_liveness(self) -> None:
        js = self._runtime.js
        # one consumer per replica, named so that any replica id makes a valid consumer name
        name = f"registry_liveness_{hashlib.sha256(self._runtime.replica.encode()).hexdigest()[:16]}"
        with contextlib.suppress(NotFoundError):
            await js.delete_consumer(TELEMETRY.name, name)
        await js.add_consumer(
            TELEMETRY.name,
            ConsumerConfig(
                name=name,
                description="The governance observer's read of node liveness (ephemeral, one per active observer)",
                filter_subject=_HEARTBEATS,
                deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
                ack_policy=AckPolicy.NONE,
                inactive_threshold=60.0,
            ),
        )
        puller = BatchPuller(self._runtime.nc, TELEMETRY.name, name)
        book = self._liveness
        next_tick = time.monotonic()
        try:
            while not self._stop.is_set():
                wait_s = max(0.05, next_tick - time.monotonic())
                msgs = await puller.fetch(self._options.batch_size, timeout=wait_s)
                for msg in msgs:
                    try:
                        sample = _decode_heartbeat(msg.data).data
                    except (msgspec.DecodeError, msgspec.ValidationError):
                        continue
                    book.seen(sample.node_id, sample.seen_at, sample.metrics)
                if time.monotonic() >= next_tick:
                    due = book.due(self._clock())
                    await _bounded(
                        [functools.partial(self._observe_liveness, book, observation) for observation in due]
                    )
                    next_tick = time.monotonic() + self._options.liveness_tick_s
        finally:
            with contextlib.suppress(Exception):
                await js.delete_consumer(TELEMETRY.name, name)

    async def _observe_liveness(self, book: LivenessBook, observation: Observation) -> None:
        command = ObserveLiveness(
            node_id=observation.node_id, silent_s=observation.silent_s, metrics=observation.metrics
        )

        async def call() -> NodeActionReply:
            return await self._commands.call(
                "registry", "observe_liveness", command, NodeActionReply, correlation_id=ids.new_correlation_id()
            )

        await _until_sent(call, "observe_liveness", observation.node_id, self._stop)
        # taken, or refused for good: either way not asked again until the band moves
        book.reported(observation)
        self.observations_sent += 1


async def _nothing_to_prepare(aggregator: WindowAggregator, checkpoint: WorkCheckpoint) -> None:
    """A window of disagreements needs nothing from before the checkpoint."""


async def _observe_disagreement(aggregator: WindowAggregator, stored: StoredEvent) -> None:
    assert isinstance(aggregator, DisagreementAggregator)
    if not stored.subject.endswith((".node_disagreed", ".decided")):
        return  # the consumer hears every consensus event (a dense read); only these count
    try:
        envelope = _decode_disagreement(stored.data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.error("consensus event skipped by the observer: it does not decode", seq=stored.seq, error=str(exc))
        return
    # a disagreement is an event of its own, or a step of a decision (ADR 0027)
    for step in consensus_steps(envelope.data):
        if isinstance(step, NodeDisagreed):
            aggregator.observe(stored.seq, envelope.occurred_at, step)


async def start_observer(runtime: Runtime, options: ObserverOptions | None = None) -> GovernanceObserver:
    observer = GovernanceObserver(runtime, options)
    runtime.spawn(observer.ownership.run(), name="governance_observer")

    async def stop() -> None:
        observer.ownership.stop()

    runtime.on_stop(stop)
    runtime.watch_lag([GOVERNANCE_WORK, GOVERNANCE_DISAGREEMENTS])
    return observer
