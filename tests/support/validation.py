"""The validation service beside a test's scheduler: jobs complete only once their results are
judged (ADR 0024), so every test that waits for a completion runs one.

Tests of the claim path run job types of their own ("echo", "count": any JSON object is a
result), injected into the scheduler as payload types; `judge_with_test_types` judges their
results by checksum alone and every registered job type's as the service does."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from ccn_core.receipts import ensure_key_ring
from ccn_core.service import open_runtime
from ccn_core.settings import Settings
from ccn_jobs.result_validation import Validator, Verdict, judge_result
from ccn_proto.canonical import result_checksum
from ccn_proto.results import Reason
from ccn_validation.app import start_validation
from ccn_validation.judging import ResultJudging

TEST_JOB_TYPES = frozenset({"echo", "count"})


def judge_with_test_types(job_type: str, result: bytes | Mapping[str, Any], checksum: str) -> Verdict:
    if job_type not in TEST_JOB_TYPES:
        return judge_result(job_type, result, checksum)
    document = msgspec.json.decode(result) if isinstance(result, bytes) else dict(result)
    actual = result_checksum(document)
    reasons = () if actual == checksum else (Reason(code="checksum", message="not the result's checksum"),)
    return Verdict(
        job_type=job_type,
        accepted=not reasons,
        checksum=actual,
        reasons=reasons,
        job_type_version="1",
        rules_version="1",
    )


@contextlib.asynccontextmanager
async def validation_service(
    settings: Settings, validator: Validator = judge_with_test_types
) -> AsyncIterator[ResultJudging]:
    """A validation replica with its own connection, signing with a key ring made in the
    settings' home (as `ccn up` makes one)."""
    ensure_key_ring(settings.receipt_keys_path, datetime.now(UTC))
    async with open_runtime("validation", settings, needs_postgres=False) as runtime:
        yield await start_validation(runtime, health=False, validator=validator)
