"""What the stack's servers need before any service starts: the schema migrated and the
JetStream streams declared. Also used by `ccn migrate`."""

from __future__ import annotations

import asyncpg
import nats
from nats.errors import Error as NatsError

from ccn_cli.stack.errors import StackError
from ccn_cli.stack.urls import redact_password
from ccn_core.migrations import apply_migrations
from ccn_core.settings import Settings
from ccn_core.topology import ensure_streams


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


async def declare_streams(nats_url: str, settings: Settings) -> list[str]:
    """Creates or updates every stream of the topology; returns the names created now."""

    async def quiet(_: Exception) -> None:
        """connect() raises what matters; the callback would only repeat it."""

    try:
        nc = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False, error_cb=quiet)
    except (OSError, NatsError, TimeoutError) as exc:
        raise StackError(f"cannot connect to NATS at {nats_url} ({exc}); check CCN_NATS_URL") from None
    try:
        return await ensure_streams(nc.jetstream(), settings)
    finally:
        await nc.drain()
