"""A node's fetch, passed on to the fetch proxy: one path for the `fetch` frame and for
POST /compute/jobs/{job_id}/fetch.

The edge judges nothing about the URL (the proxy checks, in order, the job, the scheme, the
allow-list, robots.txt, the domain's limits and the egress policy). It only makes the request
the proxy's to judge: `node_id` is always the session's, never anything the node sent, and it
bounds what one node may have out at the proxy at once through this replica (`FetchSlots`), so
a node cannot tie up the proxy's and the edge's capacity with fetches it never waits for.

The proxy's answer (a FetchOutcome) goes back as it came. No answer within the edge's wait (the
proxy is down, at capacity, or slow) is `Unavailable` with `retry_after`: the node asks again
later, and the job is not failed for it."""

from __future__ import annotations

from typing import Final, cast

from ccn_core.commands import CommandClient
from ccn_core.errors import RateLimited, Unavailable
from ccn_edge.connection_gate import ConnectionGate, Refusal, Ticket
from ccn_proto.fetch import FetchOutcome, FetchPage

FETCH_SERVICE: Final = "fetch"
FETCH_PAGE: Final = "fetch_page"
# a node at its cap of fetches in flight waits about as long as a quick fetch takes
FETCHES_RETRY_AFTER_S: Final = 1.0
# the proxy did not answer: it may be restarting, or busy; long enough not to hammer it
PROXY_RETRY_AFTER_S: Final = 5.0


class FetchSlots:
    """Fetches in flight per node on this edge replica, against a cap (exact: taking a slot
    never waits, so no other task runs between the check and the count)."""

    def __init__(self, per_node: int) -> None:
        self._gate = ConnectionGate(per_key=per_node)

    @property
    def per_node(self) -> int:
        return self._gate.per_key

    def take(self, node_id: str) -> Ticket:
        """A slot for one fetch (release it once answered); RateLimited past the cap."""
        slot = self._gate.acquire(node_id)
        if isinstance(slot, Refusal):
            raise RateLimited(
                f"this node already has {slot.limit} fetches in flight; wait for their answers",
                retry_after=FETCHES_RETRY_AFTER_S,
            )
        return slot

    def held(self, node_id: str) -> int:
        return self._gate.held(node_id)


class FetchRelay:
    def __init__(self, commands: CommandClient, slots: FetchSlots, *, timeout_s: float) -> None:
        self._commands = commands
        self.slots = slots
        self._timeout_s = timeout_s

    async def fetch(self, command: FetchPage, *, correlation_id: str, slot: Ticket | None = None) -> FetchOutcome:
        """The proxy's answer to `command` (whose node_id the caller took from the session).
        `slot`: one already taken for it (the socket takes it as it reads the frame); else one
        is taken here. Either way it is released when this returns."""
        held = slot if slot is not None else self.slots.take(command.node_id)
        try:
            outcome = await self._commands.call(
                FETCH_SERVICE,
                FETCH_PAGE,
                command,
                # the reply is a tagged union, which msgspec decodes as a type of its own
                cast("type[FetchOutcome]", FetchOutcome),
                correlation_id=correlation_id,
                timeout=self._timeout_s,
            )
        except Unavailable as exc:
            raise Unavailable(
                f"the fetch proxy cannot take the fetch now ({exc.message})",
                retry_after=max(exc.retry_after or 0.0, PROXY_RETRY_AFTER_S),
            ) from None
        finally:
            held.release()
        return outcome
