"""What the proxy asks the scheduler about a node's job, and the count of the job's fetches.

A job's view comes from the scheduler (`get_job`, its event history, never a read model) and is
kept a couple of seconds, since a crawl asks for many pages in a row; a cached view that no
longer says the node holds the job is asked for again before a refusal. A robots.txt refusal
cancels the job (`cancel_job`): its URL would never be fetched.

The fetches of a job attempt are counted in a KV key (`<job id>.<attempt>`), raised with
compare-and-set, so the cap holds however many proxy replicas serve the job's node.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from ccn_core.commands import CommandClient
from ccn_core.errors import BadInput, NotFound, Unavailable
from ccn_core.logging import get_logger
from ccn_proto.scheduler import CancelJob, CancelJobReply, GetJob, JobView

log = get_logger("ccn.fetch_proxy.jobs")

VIEW_TTL_S = 2.0
MAX_VIEWS = 10_000
MAX_CAS_ATTEMPTS = 32


class JobAccess(Protocol):
    async def view(self, job_id: str, correlation_id: str, *, fresh: bool = False) -> JobView | None:
        """The job as the scheduler has it; None when there is no such job."""
        ...

    async def cancel(self, job_id: str, reason: str, correlation_id: str) -> None: ...


class SchedulerJobs:
    def __init__(
        self,
        client: CommandClient,
        *,
        ttl_s: float = VIEW_TTL_S,
        max_views: int = MAX_VIEWS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._max_views = max_views
        self._clock = clock
        self._views: OrderedDict[str, tuple[float, JobView]] = OrderedDict()

    async def view(self, job_id: str, correlation_id: str, *, fresh: bool = False) -> JobView | None:
        now = self._clock()
        cached = self._views.get(job_id)
        if cached is not None and not fresh and now - cached[0] < self._ttl_s:
            return cached[1]
        try:
            view = await self._client.call(
                "scheduler", "get_job", GetJob(job_id=job_id), JobView, correlation_id=correlation_id
            )
        except (NotFound, BadInput):
            self._views.pop(job_id, None)
            return None
        self._views[job_id] = (now, view)
        self._views.move_to_end(job_id)
        while len(self._views) > self._max_views:
            self._views.popitem(last=False)
        return view

    async def cancel(self, job_id: str, reason: str, correlation_id: str) -> None:
        self._views.pop(job_id, None)
        await self._client.call(
            "scheduler",
            "cancel_job",
            CancelJob(job_id=job_id, reason=reason[:1000]),
            CancelJobReply,
            correlation_id=correlation_id,
        )


class FetchBudget:
    """Fetches per job attempt, shared by every replica."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def spend(self, job_id: str, attempt: int, cap: int) -> int | None:
        """Count one more fetch; the new count, or None when `cap` fetches were made already."""
        key = f"{job_id}.{attempt}"
        if cap >= 1:
            # most jobs fetch once: create the count at 1 in one round trip; it exists already
            # only for a job's later fetches, which then count as below
            try:
                await self._kv.create(key, b"1")
                return 1
            except KeyWrongLastSequenceError:
                pass
            except (NatsError, TimeoutError) as error:
                raise Unavailable(f"the fetch count is unavailable: {error}", retry_after=1.0) from None
        for _ in range(MAX_CAS_ATTEMPTS):
            try:
                try:
                    entry = await self._kv.get(key)
                except KeyNotFoundError:
                    entry = None
                count = int(entry.value or b"0") if entry is not None else 0
                if count >= cap:
                    return None
                value = str(count + 1).encode()
                if entry is None:
                    await self._kv.create(key, value)
                else:
                    await self._kv.update(key, value, last=entry.revision)
                return count + 1
            except KeyWrongLastSequenceError:
                continue  # another replica counted one meanwhile: count again
            except ValueError:
                return None  # not a count: nobody but the proxy writes here, so refuse, never raise
            except (NatsError, TimeoutError) as error:
                raise Unavailable(f"the fetch count is unavailable: {error}", retry_after=1.0) from None
        raise Unavailable("the job's fetch count is contended; try again", retry_after=0.5)

    async def refund(self, job_id: str, attempt: int) -> None:
        """Give back one fetch counted for a request that sent nothing. Best effort: if the count
        cannot be written, the job has one fetch fewer, which only ever errs on the safe side."""
        key = f"{job_id}.{attempt}"
        for _ in range(MAX_CAS_ATTEMPTS):
            try:
                entry = await self._kv.get(key)
                count = int(entry.value or b"0")
                if count <= 0:
                    return
                await self._kv.update(key, str(count - 1).encode(), last=entry.revision)
                return
            except KeyWrongLastSequenceError:
                continue
            except (KeyNotFoundError, ValueError, NatsError, TimeoutError) as error:
                log.warning("fetch count not refunded", job_id=job_id, error=str(error))
                return
