"""The job read model's physical choices, which a later migration could undo unnoticed."""

from __future__ import annotations

import asyncpg

_STORAGE = """
SELECT attstorage FROM pg_attribute
WHERE attrelid = $1::regclass AND attname = 'payload_json'"""


async def test_a_hot_job_row_keeps_its_payload_out_of_line_and_the_archive_compresses_it(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        # 'e' EXTERNAL: an update of the row (every claim, every end) copies a pointer, not the
        # payload; 'x' EXTENDED: compressed, for rows written once
        assert await conn.fetchval(_STORAGE, "community_jobs") == b"e"
        assert await conn.fetchval(_STORAGE, "community_jobs_archive") == b"x"
    finally:
        await conn.close()
