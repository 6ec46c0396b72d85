"""The domain limiter when its bucket does not answer: acquiring is Unavailable (politeness that
cannot be checked is never a pass), releasing never raises (the lease frees itself)."""

from __future__ import annotations

from typing import Any, cast

import nats.errors
import pytest
from nats.js.kv import KeyValue

from ccn_core.domain_limiter import DomainLimiter, Permit
from ccn_core.errors import Unavailable
from ccn_core.politeness import DomainLimits, FetchResult


class SilentBucket:
    """A bucket whose every request times out, counting them."""

    def __init__(self) -> None:
        self.requests = 0

    async def _timeout(self, *_: Any, **__: Any) -> Any:
        self.requests += 1
        raise nats.errors.TimeoutError

    get = create = update = _timeout


async def test_acquire_is_unavailable_and_release_never_raises_when_the_bucket_is_silent() -> None:
    bucket = SilentBucket()
    limiter = DomainLimiter(cast(KeyValue, bucket), timeout_s=0.1)
    with pytest.raises(Unavailable) as raised:
        await limiter.acquire("grants.example.org", DomainLimits(per_minute=60, per_hour=600, max_concurrent=1))
    assert raised.value.retry_after == 1.0
    permit = Permit(domain="grants.example.org", lease_id="lease-1")
    assert await limiter.release(permit, FetchResult(status=200, latency_s=0.1)) == []
    assert bucket.requests == 2
