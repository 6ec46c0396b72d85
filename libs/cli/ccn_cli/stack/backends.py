"""What the stack's servers need before any service starts: the schema migrated and the
JetStream streams declared. Also used by `ccn migrate` and `ccn topology`."""

from __future__ import annotations

import asyncpg
import nats
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError

from ccn_cli.stack.errors import StackError
from ccn_cli.stack.urls import redact_password
from ccn_core.kv_lock import LockTimeout
from ccn_core.migrations import apply_migrations
from ccn_core.settings import Settings
from ccn_core.topology import apply_topology, missing_topology


async def migrate(database_url: str) -> list[str]:
    """Applies the bundled migrations; returns the names applied now."""
    try:
        conn = await asyncpg.connect(database_url, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise StackError(
            f"cannot connect to Postgres at {redact_password(database_url)} ({exc}); "
            "start the stack with `ccn up` or check CCN_DATABASE_URL"
        ) from None
    try:
        return await apply_migrations(conn)
    finally:
        await conn.close()


async def _connect_nats(nats_url: str) -> NATS:
    async def quiet(_: Exception) -> None:
        """connect() raises what matters; the callback would only repeat it."""

    try:
        return await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False, error_cb=quiet)
    except (OSError, NatsError, TimeoutError) as exc:
        raise StackError(f"cannot connect to NATS at {nats_url} ({exc}); check CCN_NATS_URL") from None


async def declare_streams(nats_url: str, settings: Settings) -> list[str]:
    """Creates or updates every stream and bucket of the topology under the topology lock;
    returns the names created now."""
    nc = await _connect_nats(nats_url)
    try:
        return await apply_topology(nc.jetstream(), settings)
    except LockTimeout as exc:
        raise StackError(f"topology not applied: {exc}") from None
    finally:
        await nc.drain()


async def topology_gaps(nats_url: str) -> list[str]:
    """What of the topology the server at nats_url lacks (empty: all there)."""
    nc = await _connect_nats(nats_url)
    try:
        return await missing_topology(nc.jetstream())
    finally:
        await nc.drain()
