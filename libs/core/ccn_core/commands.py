"""Commands as NATS request/reply on ccn.cmd.<service>.<command>, typed both ways.

Replies carry header ccn-status ok|error; an error body is a ccn_proto CommandError, which the
caller raises again as the matching CcnError. Replicas of a service share commands through a
queue group.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import msgspec
import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from opentelemetry import trace

from ccn_core import ids, subjects
from ccn_core.errors import BadInput, CcnError, Unavailable, error_from_code
from ccn_core.logging import correlation, get_logger
from ccn_core.metrics import COMMAND_SECONDS, COMMANDS_DROPPED
from ccn_core.tracing import extract_trace, inject_trace, tracer
from ccn_proto.commands import CommandError
from ccn_proto.envelope import HEADER_CAUSATION_ID, HEADER_CORRELATION_ID, HEADER_STATUS

R = TypeVar("R")
_NO_RESPONDERS_BACKOFF_S = (0.05, 0.1, 0.25)
# when the caller stops waiting, as Unix time: a command still queued past it is dropped unread,
# since its answer would reach no one (clocks of a cluster's machines agree far closer than this)
HEADER_DEADLINE = "ccn-deadline"
_DEADLINE_SLACK_S = 0.5
# what a subscription may buffer before the server counts it a slow consumer: commands are
# refused at once past max_concurrency, so the buffer only holds what arrives between two turns
_PENDING_MSGS_LIMIT = 65_536
_PENDING_BYTES_LIMIT = 256 * 1024 * 1024
_OVERLOADED_RETRY_AFTER_S = 1.0
log = get_logger("ccn.commands")
_decode_error = msgspec.json.Decoder(CommandError).decode


class CommandContext(msgspec.Struct, frozen=True):
    correlation_id: str
    causation_id: str | None
    command: str


Handler = Callable[[Any, CommandContext], Awaitable[msgspec.Struct]]


_AT_PATH = re.compile(r"- at `\$(?P<path>[^`]*)`$")
_NAMED_FIELD = re.compile(r"(?:unknown|missing required) field `(?P<name>[^`]+)`")


def offending_field(message: str) -> str | None:
    """The field a msgspec validation message blames, dotted (`priority`, `consent.hash`):
    its path (`- at `$.consent``) plus the field it names (`missing required field `hash``)."""
    at = _AT_PATH.search(message)
    path = at.group("path").lstrip(".") if at else ""
    named = _NAMED_FIELD.search(message)
    parts = [part for part in (path, named.group("name") if named else "") if part]
    return ".".join(parts) or None


def validation_error(exc: msgspec.ValidationError | msgspec.DecodeError) -> BadInput:
    """A body that failed to decode, as BadInput naming the field (None when the JSON itself
    is malformed)."""
    message = str(exc)
    if isinstance(exc, msgspec.DecodeError) and not isinstance(exc, msgspec.ValidationError):
        return BadInput(f"malformed JSON: {message}")
    return BadInput(message, field=offending_field(message))


def command_error(exc: CcnError) -> CommandError:
    """How a refusal travels in a reply, whole or as one item of a batch."""
    return CommandError(code=exc.code, message=exc.message, field=exc.field, retry_after=exc.retry_after)


def raise_command_error(error: CommandError) -> NoReturn:
    """The caller's side of `command_error`: the refusal as the error it was."""
    raise error_from_code(error.code, error.message, field=error.field, retry_after=error.retry_after)


async def item_outcome(call: Awaitable[R]) -> tuple[R | None, CommandError | None]:
    """One item of a batch command: its reply, or its refusal. Items are independent, so one
    item's failure must not fail the others, which may have written already."""
    try:
        return await call, None
    except CcnError as exc:
        log.info("batch item refused", code=exc.code, reason=exc.message)
        return None, command_error(exc)
    except Exception:
        log.exception("batch item failed")
        return None, CommandError(code="internal", message="internal error")


class CommandServer:
    def __init__(self, nc: NATS, service: str, *, max_concurrency: int = 256, max_waiting: int = 0) -> None:
        """`max_concurrency` commands in hand at once; `max_waiting` more may wait for a turn
        (rare, slow administrative commands); past both a command is refused at once."""
        self._nc = nc
        self._service = service
        self._max_waiting = max_waiting
        self._waiting = 0
        self._handlers: dict[str, tuple[msgspec.json.Decoder[Any], Handler]] = {}
        self._slots = asyncio.Semaphore(max_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._sub: Any = None
        self._notices: dict[str, tuple[msgspec.json.Decoder[Any], Callable[[Any], None]]] = {}
        self._notice_subs: list[Any] = []
        self._tracer = tracer(f"ccn.{service}")

    def register(self, name: str, request_type: type[msgspec.Struct], handler: Handler) -> None:
        self._handlers[name] = (msgspec.json.Decoder(request_type), handler)

    def on_notice(self, subject: str, message_type: type[msgspec.Struct], handler: Callable[[Any], None]) -> None:
        """A fire-and-forget message (CommandClient.notify) that every replica hears: no queue
        group, no reply. `handler` runs in the subscription's callback, so it must not block."""
        self._notices[subject] = (msgspec.json.Decoder(message_type), handler)

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(
            subjects.command_wildcard(self._service),
            queue=self._service,
            cb=self._on_msg,
            pending_msgs_limit=_PENDING_MSGS_LIMIT,
            pending_bytes_limit=_PENDING_BYTES_LIMIT,
        )
        for subject, (decoder, handler) in self._notices.items():
            self._notice_subs.append(
                await self._nc.subscribe(
                    subject,
                    cb=_notice_callback(decoder, handler),
                    pending_msgs_limit=_PENDING_MSGS_LIMIT,
                    pending_bytes_limit=_PENDING_BYTES_LIMIT,
                )
            )

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop taking commands, then let those in hand finish for up to `grace_s`; what is
        still running then is cancelled (its caller gets no reply and retries)."""
        for sub in self._notice_subs:
            await sub.unsubscribe()
        self._notice_subs.clear()
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
        if self._tasks:
            _, late = (
                await asyncio.wait(set(self._tasks), timeout=grace_s) if grace_s > 0 else (set(), set(self._tasks))
            )
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1.0)

    async def _on_msg(self, msg: Msg) -> None:
        headers = msg.headers or {}
        deadline = headers.get(HEADER_DEADLINE)
        if deadline is not None and _past(deadline):
            COMMANDS_DROPPED.labels(self._service, "past_deadline").inc()
            return  # the caller gave up on it: doing it now would only delay those still waiting
        if self._slots.locked():
            if self._waiting >= self._max_waiting:
                # every slot is busy: say so at once, so the caller backs off, instead of
                # queueing without bound behind commands that may take their whole wait
                COMMANDS_DROPPED.labels(self._service, "overloaded").inc()
                await self._refuse_overloaded(msg, headers)
                return
            self._waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self._waiting -= 1
        else:
            await self._slots.acquire()
        task = asyncio.create_task(self._handle(msg))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    async def _refuse_overloaded(self, msg: Msg, headers: dict[str, str]) -> None:
        if not msg.reply:
            return
        busy = Unavailable(
            f"the {self._service} service is at capacity; try again", retry_after=_OVERLOADED_RETRY_AFTER_S
        )
        correlation_id = headers.get(HEADER_CORRELATION_ID) or ""
        with contextlib.suppress(nats.errors.Error):
            await self._nc.publish(
                msg.reply,
                msgspec.json.encode(command_error(busy)),
                headers={HEADER_STATUS: "error", HEADER_CORRELATION_ID: correlation_id},
            )

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def _handle(self, msg: Msg) -> None:
        headers = msg.headers or {}
        name = msg.subject.rsplit(".", 1)[1]
        correlation_id = headers.get(HEADER_CORRELATION_ID) or ids.new_correlation_id()
        context = CommandContext(correlation_id, headers.get(HEADER_CAUSATION_ID), name)
        started = time.perf_counter()
        with (
            correlation(correlation_id, command=name),
            self._tracer.start_as_current_span(
                f"command {self._service}.{name}", context=extract_trace(headers), kind=trace.SpanKind.SERVER
            ) as span,
        ):
            span.set_attribute("ccn.correlation_id", correlation_id)
            try:
                entry = self._handlers.get(name)
                if entry is None:
                    raise BadInput(f"{self._service} has no command {name!r}")
                decoder, handler = entry
                try:
                    request = decoder.decode(msg.data)
                except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                    raise validation_error(exc) from None
                except (RecursionError, UnicodeDecodeError):
                    raise BadInput("the command is not UTF-8 JSON of bounded depth") from None
                reply = await handler(request, context)
                body, status, outcome = msgspec.json.encode(reply), "ok", "ok"
                log.info("command handled", duration_ms=round((time.perf_counter() - started) * 1000, 2))
            except CcnError as exc:
                span.set_attribute("ccn.error_code", exc.code)
                log.info("command refused", code=exc.code, reason=exc.message)
                body = msgspec.json.encode(command_error(exc))
                status, outcome = "error", "refused"
            except Exception as exc:
                span.record_exception(exc)
                log.exception("command failed")
                body = msgspec.json.encode(CommandError(code="internal", message="internal error"))
                status, outcome = "error", "failed"
            # the label is a command this server knows: a stray subject must not mint a series
            known = name if name in self._handlers else "unknown"
            COMMAND_SECONDS.labels(self._service, known, outcome).observe(time.perf_counter() - started)
            if msg.reply:
                try:
                    await self._nc.publish(
                        msg.reply, body, headers={HEADER_STATUS: status, HEADER_CORRELATION_ID: correlation_id}
                    )
                except nats.errors.MaxPayloadError:
                    # the caller would otherwise wait out its timeout, not knowing what happened
                    log.error("reply over NATS max_payload; answered with an error", reply_bytes=len(body))
                    too_large = CommandError(code="internal", message="the reply was too large to send")
                    await self._nc.publish(
                        msg.reply,
                        msgspec.json.encode(too_large),
                        headers={HEADER_STATUS: "error", HEADER_CORRELATION_ID: correlation_id},
                    )
                except nats.errors.ConnectionClosedError:
                    log.warning("reply lost: NATS connection closed")


def _past(deadline: str) -> bool:
    try:
        return float(deadline) + _DEADLINE_SLACK_S < time.time()
    except ValueError:
        return False  # not ours to judge: handle it


def _notice_callback(
    decoder: msgspec.json.Decoder[Any], handler: Callable[[Any], None]
) -> Callable[[Msg], Awaitable[None]]:
    async def on_notice(msg: Msg) -> None:
        try:
            notice = decoder.decode(msg.data)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            log.warning("notice ignored: it does not decode", subject=msg.subject, error=str(exc))
            return
        handler(notice)

    return on_notice


class CommandClient:
    def __init__(self, nc: NATS, *, timeout: float = 5.0) -> None:
        self._nc = nc
        self._timeout = timeout
        self._decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}

    async def call(
        self,
        service: str,
        name: str,
        request: msgspec.Struct,
        reply_type: type[R],
        *,
        correlation_id: str,
        causation_id: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - nats-py's request takes the timeout itself
    ) -> R:
        wait_s = timeout or self._timeout
        headers = {HEADER_CORRELATION_ID: correlation_id, HEADER_DEADLINE: f"{time.time() + wait_s:.3f}"}
        if causation_id:
            headers[HEADER_CAUSATION_ID] = causation_id
        inject_trace(headers)
        body = msgspec.json.encode(request)
        for delay in (*_NO_RESPONDERS_BACKOFF_S, None):
            try:
                msg = await self._nc.request(subjects.command(service, name), body, timeout=wait_s, headers=headers)
                break
            except nats.errors.NoRespondersError:
                # Nobody received it, so asking again is safe. A service that has just
                # (re)subscribed can be briefly invisible to a request: retry a few times
                # before calling it down.
                if delay is None:
                    raise Unavailable(f"the {service} service is not running", retry_after=2.0) from None
                await asyncio.sleep(delay)
            except (nats.errors.TimeoutError, TimeoutError):
                raise Unavailable(f"the {service} service did not answer in time", retry_after=2.0) from None
            except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError, OSError):
                raise Unavailable("NATS is unavailable", retry_after=2.0) from None
        if (msg.headers or {}).get(HEADER_STATUS) == "error":
            raise_command_error(_decode_error(msg.data))
        decoder = self._decoders.get(reply_type)
        if decoder is None:
            decoder = self._decoders[reply_type] = msgspec.json.Decoder(reply_type)
        return decoder.decode(msg.data)  # type: ignore[no-any-return]

    async def notify(self, subject: str, message: msgspec.Struct) -> None:
        """Fire and forget, to every subscriber: no reply, no error if nobody listens."""
        try:
            await self._nc.publish(subject, msgspec.json.encode(message))
        except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError, OSError):
            raise Unavailable("NATS is unavailable", retry_after=2.0) from None
