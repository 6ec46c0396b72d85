"""schemathesis against the edge's and analytics' own OpenAPI documents, fetched from the
running services (tests/fuzz/openapi_fuzz.py says how). Each run asserts that nothing got a
5xx or an untyped refusal, that every operation of the document was exercised, and that every
service is still ready once the projections have taken in what the run wrote.

The small form runs in `make test`; the long one with CCN_SLOW=1 (marked slow):

    CCN_SLOW=1 .venv/bin/python -m pytest tests/fuzz -p no:cacheprovider -m slow
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import requests
from schemathesis import GenerationMode

from tests.fuzz.figures import Tally
from tests.fuzz.openapi_fuzz import (
    Credentials,
    fuzz_operation,
    fuzz_raw_bodies,
    load_schema,
    operations_of,
    takes_input,
)
from tests.fuzz.stack import Stack, settled_readiness
from tests.support.sizes import small_and_full


@dataclass(frozen=True)
class Budget:
    positive: int
    negative: int
    hostile: int


SMALL = Budget(positive=8, negative=8, hostile=2)  # hostile: per class of mutation
FULL = Budget(positive=150, negative=150, hostile=25)
SIZES = small_and_full(SMALL, FULL, "the long fuzzing run")


async def fetch_document(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200, await response.text()
        document: dict[str, Any] = await response.json()
        return document


def fuzz_document(document: dict[str, Any], base_url: str, stack: Stack, budget: Budget, tally: Tally) -> set[str]:
    """Every operation of the document, in each mode; returns the operations' labels."""
    schema = load_schema(document)
    operations = operations_of(schema)
    with requests.Session() as http:
        credentials = Credentials(stack.edge_url, stack.settings.admin_token, http)
        for operation in operations:
            common = {"base_url": base_url, "credentials": credentials, "http": http, "tally": tally}
            fuzz_operation(operation, GenerationMode.POSITIVE, budget.positive, **common)
            if takes_input(operation):  # nothing to make invalid in a bare GET (GET /receipts/keys)
                fuzz_operation(operation, GenerationMode.NEGATIVE, budget.negative, **common)
            if operation.body:
                fuzz_raw_bodies(operation, budget.hostile, **common)
    return {operation.label for operation in operations}


async def fuzz_service(stack: Stack, base_url: str, budget: Budget, tally: Tally) -> None:
    document = await fetch_document(f"{base_url}/schema/openapi.json")
    labels = await asyncio.to_thread(fuzz_document, document, base_url, stack, budget, tally)
    for service, why in (await settled_readiness(stack)).items():
        tally.found(f"{service} not ready after the run", f"after {tally.examples} examples: {why}")
    assert labels, "the document lists no operations"
    assert labels <= set(tally.covered), f"operations never exercised: {sorted(labels - set(tally.covered))}"
    assert not tally.findings, tally.failure_report()


@pytest.mark.parametrize("budget", SIZES)
async def test_the_edge_api_survives_schemathesis(stack: Stack, tally: Tally, budget: Budget) -> None:
    await fuzz_service(stack, stack.edge_url, budget, tally)


@pytest.mark.parametrize("budget", SIZES)
async def test_the_analytics_api_survives_schemathesis(stack: Stack, tally: Tally, budget: Budget) -> None:
    # two GET operations with many optional parameters, each answered in a millisecond: four
    # times the examples, so that the small run draws the rarer combinations too
    more = Budget(positive=budget.positive * 4, negative=budget.negative * 4, hostile=budget.hostile)
    await fuzz_service(stack, stack.analytics_url, more, tally)
