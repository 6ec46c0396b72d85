"""Reactors (process managers): durable consumers that turn events into commands.

Replicas share one durable consumer, so each event goes to one of them; a handler must be
idempotent by event id (it derives its command's idempotency key from the event id, so a
redelivered event writes nothing new). Errors map once to ack / redeliver later / terminate.

Nothing is dropped silently: an event that does not decode, a handler error that can never
succeed (TERMINATE) and one still failing on its `max_deliver`-th delivery go to the dead letter
(ccn_core.dead_letter) before the message is terminated. The reactor counts deliveries itself
and the server's consumer redelivers without limit, so an event whose dead letter could not be
recorded (NATS away) comes again rather than vanishing. Replays of dead letters
(`ccn deadletter replay`) are commands to the consumer's name, served by one of the replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from ccn_core.commands import CommandContext, CommandServer
from ccn_core.dead_letter import REPLAY_COMMAND, DeadLetterOffice, error_text
from ccn_core.errors import Disposition, NotFound, disposition_for
from ccn_core.eventstore import StoredEvent
from ccn_core.logging import correlation, get_logger
from ccn_core.pull import BatchPuller, ConsumerGone, delivered_event, delivery_count
from ccn_core.topology import ConsumerSpec
from ccn_proto.deadletter import ReplayDeadLetter, ReplayDeadLetterReply
from ccn_proto.envelope import Envelope

log = get_logger("ccn.reactor")

ReactorHandler = Callable[[Envelope[Any], StoredEvent], Awaitable[None]]
# how long one pull waits for events when there are none
_IDLE_WAIT_S = 0.5
# the server redelivers without limit: the reactor gives up itself, into the dead letter
_UNLIMITED = -1


class Reactor:
    def __init__(
        self,
        nc: NATS,
        js: JetStreamContext,
        spec: ConsumerSpec,
        event_type: Any,
        handler: ReactorHandler,
        *,
        batch_size: int = 100,
        max_deliver: int = 20,
        retry_delay_s: float = 2.0,
    ) -> None:
        self._nc = nc
        self._js = js
        self._spec = spec
        self._decode = msgspec.json.Decoder(Envelope[event_type]).decode
        self._handler = handler
        self._batch_size = batch_size
        self._max_deliver = max_deliver
        self._retry_delay_s = retry_delay_s
        self._stop = asyncio.Event()
        self._dead_letters = DeadLetterOffice(js, spec, "reactor")
        self.handled = 0
        self.dead_lettered = 0

    def stop(self) -> None:
        self._stop.set()

    async def ensure_consumer(self) -> None:
        """Create the durable consumer, or bring the subjects of one an older release made up to
        the topology (a reactor that learns a new event type must hear it from then on)."""
        try:
            info = await self._js.consumer_info(self._spec.stream, self._spec.durable)
        except NotFoundError:
            await self._js.add_consumer(
                self._spec.stream,
                ConsumerConfig(
                    durable_name=self._spec.durable,
                    description=self._spec.description,
                    filter_subjects=list(self._spec.filter_subjects),
                    ack_policy=AckPolicy.EXPLICIT,
                    deliver_policy=DeliverPolicy.ALL,
                    ack_wait=30,
                    max_deliver=_UNLIMITED,
                    max_ack_pending=10_000,
                ),
            )
            return
        config = info.config
        hears = config.filter_subjects or ([config.filter_subject] if config.filter_subject else [])
        # an older release let the server drop a message after max_deliver, unseen
        if sorted(hears) != sorted(self._spec.filter_subjects) or config.max_deliver not in (None, _UNLIMITED):
            log.info("reactor consumer updated", consumer=self._spec.durable, subjects=self._spec.filter_subjects)
            updated = config.evolve(
                filter_subject=None,
                filter_subjects=list(self._spec.filter_subjects),
                description=self._spec.description,
                max_deliver=_UNLIMITED,
            )
            await self._js.add_consumer(self._spec.stream, updated)

    async def run(self) -> None:
        await self.ensure_consumer()
        replays = CommandServer(self._nc, self._spec.durable, max_concurrency=4, max_waiting=16)
        replays.register(REPLAY_COMMAND, ReplayDeadLetter, self._replay)
        try:
            await replays.start()
            await self._react()
        finally:
            await replays.stop()

    async def _react(self) -> None:
        puller = BatchPuller(self._nc, self._spec.stream, self._spec.durable)
        while not self._stop.is_set():
            try:
                msgs = await puller.next_batch(self._batch_size, _IDLE_WAIT_S)
            except ConsumerGone as exc:
                # deleted or replaced (an operator, a newer release): what was unacknowledged
                # is delivered again by the consumer made anew
                log.warning("reactor consumer lost; ensuring it", consumer=self._spec.durable, reason=str(exc))
                await asyncio.sleep(_IDLE_WAIT_S)
                with contextlib.suppress(nats.errors.Error):  # not now: the next pull says again
                    await self.ensure_consumer()
                continue
            except nats.errors.Error as exc:
                log.warning("reactor pull failed; trying again", consumer=self._spec.durable, error=repr(exc))
                await asyncio.sleep(_IDLE_WAIT_S)
                continue
            await asyncio.gather(*(self._handle(msg) for msg in msgs))

    async def _handle(self, msg: Msg) -> None:
        stored = delivered_event(msg)
        try:
            envelope = self._decode(msg.data)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            await self._dead_letter(msg, stored, exc)
            return
        with correlation(envelope.correlation_id, causation_id=envelope.event_id, reactor=self._spec.durable):
            try:
                await self._handler(envelope, stored)
            except Exception as exc:
                disposition = disposition_for(exc)
                deliveries = delivery_count(msg)
                log.warning(
                    "reaction failed",
                    error=error_text(exc),
                    disposition=disposition.value,
                    seq=stored.seq,
                    deliveries=deliveries,
                )
                if disposition is Disposition.RETRY and deliveries < self._max_deliver:
                    await msg.nak(delay=self._retry_delay_s)
                elif disposition is Disposition.ACK:
                    await msg.ack()
                else:
                    await self._dead_letter(msg, stored, exc, deliveries=deliveries)
                return
        self.handled += 1
        await msg.ack()

    async def _dead_letter(
        self, msg: Msg, stored: StoredEvent, error: Exception, *, deliveries: int | None = None
    ) -> None:
        """Record the event in the dead letter, then stop its redelivery; if the record cannot
        be written, the event comes again later and is tried again."""
        try:
            await self._dead_letters.record(stored, error, deliveries=deliveries)
        except Exception as exc:
            log.error(
                "could not dead-letter an event; it will be delivered again",
                consumer=self._spec.durable,
                seq=stored.seq,
                error=error_text(exc),
            )
            await msg.nak(delay=self._retry_delay_s)
            return
        self.dead_lettered += 1
        await msg.term()

    async def _replay(self, request: ReplayDeadLetter, _: CommandContext) -> ReplayDeadLetterReply:
        """Run the handler on a dead-lettered event again (handlers are idempotent by event id)
        and record how it went; a moot outcome (NotFound, Conflict) counts as replayed."""
        dead_letter = await self._dead_letters.find(request.dead_letter_id)
        if dead_letter is None:
            raise NotFound(f"{self._spec.durable} has no dead letter {request.dead_letter_id!r}")
        try:
            stored = await self._dead_letters.original(dead_letter.record)
        except NotFoundError:
            raise NotFound(
                f"event {dead_letter.record.stream_seq} is no longer in {dead_letter.record.stream}"
            ) from None
        failure: Exception | None = None
        try:
            envelope = self._decode(stored.data)
            with correlation(envelope.correlation_id, causation_id=envelope.event_id, reactor=self._spec.durable):
                await self._handler(envelope, stored)
        except Exception as exc:
            if disposition_for(exc) is not Disposition.ACK:  # an undecodable event is RETRY: failed
                failure = exc
        await self._dead_letters.record_replay(dead_letter, request.replay_id, failure)
        if failure is None:
            return ReplayDeadLetterReply(dead_letter_id=dead_letter.id, outcome="replayed")
        return ReplayDeadLetterReply(dead_letter_id=dead_letter.id, outcome="failed_again", error=error_text(failure))
