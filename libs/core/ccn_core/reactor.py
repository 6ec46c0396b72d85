"""Reactors (process managers): durable consumers that turn events into commands.

Replicas share one durable consumer, so each event goes to one of them; a handler must be
idempotent by event id (it derives its command's idempotency key from the event id, so a
redelivered event writes nothing new). Errors map once to ack / redeliver later / terminate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import nats.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from ccn_core.errors import Disposition, disposition_for
from ccn_core.eventstore import StoredEvent
from ccn_core.logging import correlation, get_logger
from ccn_core.topology import ConsumerSpec
from ccn_proto.envelope import Envelope

log = get_logger("ccn.reactor")

ReactorHandler = Callable[[Envelope[Any], StoredEvent], Awaitable[None]]


class Reactor:
    def __init__(
        self,
        js: JetStreamContext,
        spec: ConsumerSpec,
        event_type: Any,
        handler: ReactorHandler,
        *,
        batch_size: int = 100,
        max_deliver: int = 20,
        retry_delay_s: float = 2.0,
    ) -> None:
        self._js = js
        self._spec = spec
        self._decode = msgspec.json.Decoder(Envelope[event_type]).decode
        self._handler = handler
        self._batch_size = batch_size
        self._max_deliver = max_deliver
        self._retry_delay_s = retry_delay_s
        self._stop = asyncio.Event()
        self.handled = 0

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
                    max_deliver=self._max_deliver,
                    max_ack_pending=10_000,
                ),
            )
            return
        config = info.config
        hears = config.filter_subjects or ([config.filter_subject] if config.filter_subject else [])
        if sorted(hears) != sorted(self._spec.filter_subjects):
            log.info(
                "reactor consumer subjects updated", consumer=self._spec.durable, subjects=self._spec.filter_subjects
            )
            updated = config.evolve(
                filter_subject=None,
                filter_subjects=list(self._spec.filter_subjects),
                description=self._spec.description,
            )
            await self._js.add_consumer(self._spec.stream, updated)

    async def run(self) -> None:
        await self.ensure_consumer()
        sub = await self._js.pull_subscribe_bind(self._spec.durable, stream=self._spec.stream)
        try:
            while not self._stop.is_set():
                try:
                    msgs = await sub.fetch(self._batch_size, timeout=0.5)
                except (nats.errors.TimeoutError, TimeoutError):
                    continue
                await asyncio.gather(*(self._handle(msg) for msg in msgs))
        finally:
            await sub.unsubscribe()

    async def _handle(self, msg: Any) -> None:
        stored = StoredEvent(
            seq=msg.metadata.sequence.stream, subject=msg.subject, data=msg.data, headers=msg.headers or {}
        )
        try:
            envelope = self._decode(msg.data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            log.error("undecodable event; terminating it", subject=msg.subject, seq=stored.seq)
            await msg.term()
            return
        with correlation(envelope.correlation_id, causation_id=envelope.event_id, reactor=self._spec.durable):
            try:
                await self._handler(envelope, stored)
            except Exception as exc:
                disposition = disposition_for(exc)
                log.warning("reaction failed", error=str(exc), disposition=disposition.value, seq=stored.seq)
                if disposition is Disposition.RETRY:
                    await msg.nak(delay=self._retry_delay_s)
                elif disposition is Disposition.TERMINATE:
                    await msg.term()
                else:
                    await msg.ack()
                return
        self.handled += 1
        await msg.ack()
