"""Health probes shared by startup waits and `ccn status`. Each returns None when healthy, or a
short reason an operator can read."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import asyncpg
import nats
from nats.errors import Error as NatsError


async def _quiet(_: Exception) -> None:
    """nats-py logs every failed attempt through error_cb; a probe reports its own failure."""


async def jetstream_problem(url: str, timeout_s: float = 2.0) -> str | None:
    """Connects and asks JetStream for the account info: TCP open is not enough, JetStream must answer."""
    try:
        async with asyncio.timeout(timeout_s):
            nc = await nats.connect(
                url,
                connect_timeout=timeout_s,
                allow_reconnect=False,
                max_reconnect_attempts=0,
                error_cb=_quiet,
                name="ccn-probe",
            )
            try:
                await nc.jetstream(timeout=timeout_s).account_info()
            finally:
                await nc.close()
    except (OSError, NatsError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}".rstrip(": ")
    return None


async def postgres_problem(dsn: str, timeout_s: float = 2.0) -> str | None:
    try:
        conn = await asyncpg.connect(dsn, timeout=timeout_s)
        try:
            await conn.fetchval("SELECT 1", timeout=timeout_s)
        finally:
            await conn.close(timeout=timeout_s)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def http_ready_problem(url: str, timeout_s: float = 2.0) -> str | None:
    """GET url; healthy only on 200 (a 503 from /readyz names the failing check in its body)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - our own http:// URL
            if response.status == 200:
                return None
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        body = exc.read(300).decode("utf-8", errors="replace")
        return f"HTTP {exc.code} {body}".strip()
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
