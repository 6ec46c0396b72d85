"""Pulling batches from a JetStream pull consumer without a coroutine per message.

nats-py's `PullSubscription.fetch` awaits each message through `wait_for` and a task of its own,
which is most of the cost of catching a projection up. Here a callback subscription collects a
request's messages into a list and wakes the caller once, when the batch is full or the server
says there is no more for now (status 404 / 408). Each request has an inbox of its own, dropped
when it is answered.

A consumer acknowledged with AckPolicy.ALL counts every message before an acknowledged one as
acknowledged. So a request the server never ends (no status within its expiry and a margin)
raises ConsumerGone: the caller re-creates the consumer at its checkpoint, and a message that
might still be on its way to a dead inbox is delivered again rather than skipped.
"""

from __future__ import annotations

import asyncio

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from ccn_core.eventstore import StoredEvent

_STATUS = "Status"
# 404: nothing now (no_wait); 408: the request expired; 409: the consumer went away or was
# reconfigured (a leader change, a deleted consumer) — the caller re-creates it
_END_OF_BATCH = {"404", "408"}
_HEARTBEAT = "100"


# tokens of a delivery's ack subject: $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>...
# (9 tokens), or the form with domain and account hash (11 or more)
_V1_ACK_TOKENS = 9
_V1_DELIVERED = 4
_V1_STREAM_SEQ = 5


def delivered_event(msg: Msg) -> StoredEvent:
    """A consumer's delivery as a stored event. Its stream sequence is read straight from the
    ack subject: nats-py's Msg.metadata builds three dataclasses and a datetime per message,
    which was a tenth of a projection's time."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) == _V1_ACK_TOKENS and tokens[0] == Msg.Ack.Prefix0:
        seq = int(tokens[_V1_STREAM_SEQ])
    else:
        seq = msg.metadata.sequence.stream  # the longer form, or not a delivery (raises)
    return StoredEvent(seq=seq, subject=msg.subject, data=msg.data, headers=msg.headers or {})


def delivery_count(msg: Msg) -> int:
    """How many times the consumer has delivered this message, this time included, read from
    the ack subject like the sequence above."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) == _V1_ACK_TOKENS and tokens[0] == Msg.Ack.Prefix0:
        return int(tokens[_V1_DELIVERED])
    return int(msg.metadata.num_delivered or 1)


class ConsumerGone(Exception):
    """The server answered 409: the consumer was deleted or replaced."""


class _Pull(msgspec.Struct, omit_defaults=True):
    batch: int
    expires: int  # nanoseconds
    no_wait: bool = False


class BatchPuller:
    def __init__(self, nc: NATS, stream: str, durable: str) -> None:
        self._nc = nc
        self._subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"

    async def fetch(self, batch: int, timeout: float, *, no_wait: bool = False) -> list[Msg]:  # noqa: ASYNC109
        """Up to `batch` messages. The server ends the request when the batch is full or at
        `timeout` (its expiry); with `no_wait`, also as soon as it has nothing more to give once
        it gave something: what the consumer has now, or else the first message to arrive within
        `timeout`. Raises ConsumerGone on a 409 or a request the server never ended."""
        msgs: list[Msg] = []
        done = asyncio.get_running_loop().create_future()

        async def collect(msg: Msg) -> None:
            if done.done():
                return
            status = msg.headers.get(_STATUS) if msg.headers else None
            if status is None:
                msgs.append(msg)
                if len(msgs) >= batch:
                    done.set_result(None)
            elif status in _END_OF_BATCH:
                done.set_result(None)
            elif status != _HEARTBEAT:
                description = msg.headers.get("Description", "") if msg.headers else ""
                done.set_exception(ConsumerGone(f"pull request ended with status {status}: {description}"))

        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(inbox, cb=collect)
        try:
            request = msgspec.json.encode(_Pull(batch=batch, expires=int(timeout * 1e9), no_wait=no_wait))
            await self._nc.publish(self._subject, request, reply=inbox)
            # the server ends the request itself at `expires`; the margin covers a slow reply
            async with asyncio.timeout(timeout + 5):
                await done
        except TimeoutError:
            raise ConsumerGone(f"pull request not answered within {timeout + 5:.1f}s") from None
        finally:
            await sub.unsubscribe()
        return msgs

    async def next_batch(self, batch: int, idle_wait: float) -> list[Msg]:
        """What the consumer has now, up to `batch`; when it has nothing, what arrives first
        within `idle_wait`. A request without `no_wait` ends only when its batch is full or its
        expiry passes, so on a quiet stream each message would wait out the expiry; asked this
        way, a message waits for no timer, and a busy stream still comes in full batches (what
        piled up while the last one was handled). The expiry still bounds the request when the
        consumer may deliver no more (max_ack_pending reached): `no_wait` alone would leave it
        open then."""
        return await self.fetch(batch, idle_wait, no_wait=True)
