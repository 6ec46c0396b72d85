"""Documents named by reference, read through the edge before the handler runs.

A payload may name its document by reference (sha256, size, media type) to a body in the
document object store, which only the edge reaches. The worker that runs the job fetches each
body from GET /compute/jobs/{job_id}/documents/{sha256} with the node's session token
(`EdgeBodyReader`, a ccn_jobs.documents.BodyReader), through `fetch_bodies`, which checks size
and digest as it does for any reader, and then runs the handler with the bodies in place of
their references. A body that cannot be had (refused, missing, cut short, not the reference's)
fails the job with DocumentRefused's typed reason (`body_missing`, `body_mismatch`); the node
runs on.

The fetch happens in the worker, not in the node's event loop: the job holds its slot while its
body downloads, the job's wall-clock timeout covers the download, and the node's process never
holds a body. A job without references runs as it always did, with no request made.

A crawl job (its JobType has a `crawl` spec) fetches its pages the same way, in the worker:
each URL through POST /compute/jobs/{job_id}/fetch (`EdgeFetcher`), each fetched body through
the documents endpoint (the proxy granted it to the job), checked, metered like any body; the
loop and its rules are ccn_cli.node.crawl's. Then the handler runs on the payload with its
pages in place."""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import aiohttp
import msgspec

from ccn_cli.node.config import NodeConfig, http_url
from ccn_cli.node.crawl import CrawlClock, CrawlInterrupted, FetchUnavailable, crawl
from ccn_cli.node.execute import Execute, JobRefused, execute_job
from ccn_cli.node.metering import FetchMeter, current_meter
from ccn_jobs.documents import fetch_bodies, references
from ccn_jobs.errors import InvalidPayload
from ccn_jobs.job_type import JobType
from ccn_jobs.registry import JOB_TYPES, decode_payload, result_to_builtins
from ccn_proto.canonical import result_checksum
from ccn_proto.compute_api import FetchRequest
from ccn_proto.fetch import FetchOutcome

_CHUNK_BYTES: Final = 64 * 1024
_MAX_ERROR_BYTES: Final = 4 * 1024
# a fetch's answer: URLs of at most 8 KiB each, the final one and up to ten redirects, and the rest
MAX_FETCH_REPLY_BYTES: Final = 256 * 1024
# how long the node waits for one fetch's answer: longer than the edge waits for the proxy (45 s)
FETCH_WAIT_S: Final = 60.0
_fetch_outcome = msgspec.json.Decoder(FetchOutcome)


class BodyUnavailable(LookupError):
    """The edge did not give the body: the message says what it answered, or what went wrong."""


@dataclass(frozen=True, slots=True)
class EdgeDocuments:
    """Where one job's bodies come from. Plain data, as it crosses into the worker process."""

    base_url: str
    session_token: str
    job_id: str
    timeout_s: float  # the whole download of one body
    read_timeout_s: float  # between two reads of it
    user_agent: str
    correlation_id: str | None = None  # the job's: the edge stamps it on what it does for the job

    def headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.session_token}", "User-Agent": self.user_agent}
        if self.correlation_id is not None:
            headers["X-Correlation-ID"] = self.correlation_id
        return headers

    def url(self, sha256: str) -> str:
        return f"{self.base_url}/compute/jobs/{quote(self.job_id, safe='')}/documents/{quote(sha256, safe='')}"

    def fetch_url(self) -> str:
        return f"{self.base_url}/compute/jobs/{quote(self.job_id, safe='')}/fetch"


class _ErrorBody(msgspec.Struct, frozen=True):
    code: str = "unknown"
    message: str = ""


class EdgeBodyReader:
    """A BodyReader over the edge's HTTP endpoint. It never reads more than `size` bytes: a
    reply that announces or carries more, or fewer, is refused. Every byte read counts on the
    job's fetch meter, which refuses a body that would take the job over its bandwidth budget
    before it is asked for (BandwidthExceeded, which fails the job as over its budget)."""

    def __init__(self, http: aiohttp.ClientSession, source: EdgeDocuments) -> None:
        self._http = http
        self._source = source

    async def read(self, sha256: str, size: int) -> bytes:
        source = self._source
        timeout = aiohttp.ClientTimeout(total=source.timeout_s, sock_read=source.read_timeout_s)
        headers = source.headers()
        meter = current_meter() or FetchMeter()
        meter.admit(size)
        try:
            async with self._http.get(
                source.url(sha256), headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                if response.status != 200:
                    raise BodyUnavailable(f"the edge refused the body {sha256}: {await _refusal(response)}")
                if response.content_length is not None and response.content_length != size:
                    raise BodyUnavailable(
                        f"the edge announces {response.content_length} bytes for {sha256}, the reference {size}"
                    )
                data = bytearray()
                async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
                    if len(data) + len(chunk) > size:
                        raise BodyUnavailable(f"the edge sent more than the reference's {size} bytes for {sha256}")
                    data += chunk
                    meter.count(len(chunk))
                return bytes(data)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BodyUnavailable(f"the body {sha256} could not be read: {type(exc).__name__}: {exc}") from None


class EdgeFetcher:
    """A crawl's fetch through the edge's HTTP endpoint: the proxy's outcome; FetchUnavailable
    for "not now" (429, 5xx, the edge unreachable), with the edge's Retry-After; CrawlInterrupted
    (the job fails) when the edge refuses the request itself (401, 403, another 4xx) or answers
    with something that is not an outcome."""

    def __init__(self, http: aiohttp.ClientSession, source: EdgeDocuments, deadline: float) -> None:
        self._http = http
        self._source = source
        self._deadline = deadline

    async def fetch(self, url: str) -> FetchOutcome:
        source = self._source
        wait_s = max(1.0, min(FETCH_WAIT_S, self._deadline - time.monotonic()))
        headers = {**source.headers(), "Content-Type": "application/json"}
        try:
            async with self._http.post(
                source.fetch_url(),
                data=msgspec.json.encode(FetchRequest(url=url)),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=wait_s),
                allow_redirects=False,
            ) as response:
                if response.status == 429 or response.status >= 500:
                    raise FetchUnavailable(
                        f"the edge answered {await _refusal(response)}",
                        _retry_after(response.headers.get("Retry-After")),
                    )
                if response.status != 200:
                    raise CrawlInterrupted(f"fetch_refused: {url}: the edge answered {await _refusal(response)}")
                raw = await response.content.read(MAX_FETCH_REPLY_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise FetchUnavailable(f"the edge could not be asked: {type(exc).__name__}: {exc}", None) from None
        if len(raw) > MAX_FETCH_REPLY_BYTES:
            raise CrawlInterrupted(f"fetch_refused: {url}: the edge's answer is over {MAX_FETCH_REPLY_BYTES} bytes")
        try:
            outcome: FetchOutcome = _fetch_outcome.decode(raw)
        except msgspec.DecodeError as exc:
            raise CrawlInterrupted(f"fetch_refused: {url}: the edge's answer is not a fetch outcome: {exc}") from None
        return outcome


def _retry_after(raw: str | None) -> float | None:
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None


async def _refusal(response: aiohttp.ClientResponse) -> str:
    raw = await response.content.read(_MAX_ERROR_BYTES)
    try:
        error = msgspec.json.decode(raw, type=_ErrorBody)
    except msgspec.DecodeError:
        error = _ErrorBody(message=raw[:200].decode("utf-8", "replace"))
    return f"{response.status} {error.code}: {error.message}"


def execute_with_documents(source: EdgeDocuments, job_type: str, payload: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """execute_job, with the payload's references fetched through the edge first; a crawl job
    with its pages fetched first."""
    job = JOB_TYPES.get(job_type)
    if job is not None and job.crawl is not None:
        return execute_crawl(source, job, payload)
    try:
        decoded = decode_payload(job_type, payload)
        bodies = asyncio.run(_fetch(decoded, source, job_type)) if references(decoded) else None
    except ValueError as exc:  # InvalidPayload, UnknownJobType, DocumentRefused
        raise JobRefused(str(exc)) from None
    return execute_job(job_type, payload, bodies)


def execute_crawl(
    source: EdgeDocuments, job: JobType[Any, Any], payload: dict[str, Any], *, clock: CrawlClock | None = None
) -> tuple[dict[str, Any], str]:
    """(result, checksum) of a crawl job: its pages fetched through the edge within the job's
    time (`source.timeout_s` from now, unless `clock` says otherwise), then its handler run on
    the payload with the pages in place. JobRefused with the reason when it cannot be."""
    assert job.crawl is not None
    clock = clock or CrawlClock(deadline=time.monotonic() + source.timeout_s)
    try:
        try:
            decoded = msgspec.convert(payload, job.payload_type)
        except msgspec.ValidationError as exc:
            raise InvalidPayload.from_msgspec(job.name, exc) from None
        with_pages = asyncio.run(_crawl(job, decoded, source, clock))
        result = result_to_builtins(job.handler(with_pages))
    except ValueError as exc:  # InvalidPayload, DocumentRefused, CrawlInterrupted, the handler's refusal
        raise JobRefused(str(exc)) from None
    return result, result_checksum(result)


async def _crawl(job: JobType[Any, Any], payload: msgspec.Struct, source: EdgeDocuments, clock: CrawlClock) -> Any:
    assert job.crawl is not None
    async with aiohttp.ClientSession() as http:
        fetcher = EdgeFetcher(http, source, clock.deadline)
        return await crawl(job.crawl, payload, fetcher.fetch, EdgeBodyReader(http, source), job.name, clock)


async def _fetch(payload: msgspec.Struct, source: EdgeDocuments, job_type: str) -> dict[str, bytes]:
    async with aiohttp.ClientSession() as http:
        return await fetch_bodies(payload, EdgeBodyReader(http, source), job_type)


def execute_for_job(
    config: NodeConfig, session_token: str | None, job_id: str, node_version: str, correlation_id: str | None = None
) -> Execute:
    """What a worker runs for this job: the job, its bodies (and a crawl's pages) fetched with
    this session's token, on the job's correlation id."""
    source = EdgeDocuments(
        base_url=http_url(config.edge_url),
        session_token=session_token or "-",
        job_id=job_id,
        timeout_s=config.job_timeout_s,
        read_timeout_s=config.http_timeout_s,
        user_agent=f"ccn-node/{node_version}",
        correlation_id=correlation_id,
    )
    return functools.partial(execute_with_documents, source)
