"""What every edge handler needs: command clients for the services behind it, and the salt that
turns a caller's IP into the hash that is all anyone stores of it."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar.connection import ASGIConnection

from ccn_core import subjects
from ccn_core.commands import CommandClient
from ccn_core.ids import ip_hash
from ccn_proto.registry import Heartbeat, HeartbeatReply
from ccn_proto.scheduler import WithdrawClaim
from ccn_web.http import correlation_id

R = TypeVar("R")
REGISTRY = "registry"
SCHEDULER = "scheduler"


class EdgeContext:
    def __init__(self, commands: CommandClient, ip_hash_salt: str) -> None:
        self.commands = commands
        self._salt = ip_hash_salt

    def caller_ip_hash(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
        host = connection.client.host if connection.client else None
        return ip_hash(host, self._salt) if host else None

    async def registry(
        self, connection: ASGIConnection[Any, Any, Any, Any], name: str, command: msgspec.Struct, reply_type: type[R]
    ) -> R:
        return await self.commands.call(
            REGISTRY, name, command, reply_type, correlation_id=correlation_id(connection.scope)
        )

    async def session_node(self, session_token: str, *, correlation_id: str) -> HeartbeatReply:
        """The node behind a session token, as the registry judges it; the session's last_seen
        moves. Every node-facing path (HTTP, WebSocket hello and heartbeats) asks this way."""
        return await self.commands.call(
            REGISTRY, "heartbeat", Heartbeat(session_token=session_token), HeartbeatReply, correlation_id=correlation_id
        )

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
