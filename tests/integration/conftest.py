"""Fixtures of the kernel's integration tests that run on servers of their own: a NATS server
and a database per test, and a client that has the tally stream declared."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS

from ccn_core.settings import Settings
from tests.conftest import make_settings
from tests.integration.kernel_fixtures import connect_with_tally


@pytest.fixture
def kernel_settings(isolated_nats: str, fresh_database: str, tmp_path: Path) -> Settings:
    return make_settings(isolated_nats, fresh_database, tmp_path)


@pytest.fixture
async def own_nc(kernel_settings: Settings) -> AsyncIterator[NATS]:
    async for client in connect_with_tally(kernel_settings.effective_nats_url, kernel_settings):
        yield client
