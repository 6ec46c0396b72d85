"""The node's HTTP calls to the edge (/compute/*): register, consent, start a session, fetch a
result's receipt.

Replies are read up to a bound and decoded into the registry's reply types. A failure comes
back as one of three errors, because the node does something different for each: wait and try
again (EdgeUnavailable), stop and tell the volunteer (EdgeRefused: 401/403, the node's tokens
are no good or it has opted out), or stop as misconfigured (EdgeRejected: any other 4xx)."""

from __future__ import annotations

from typing import NoReturn, TypeVar

import aiohttp
import msgspec

from ccn_core.receipts import MalformedReceipt, decode_receipt
from ccn_proto.compute_api import ConsentRequest, RegisterNodeRequest, StartSessionRequest
from ccn_proto.receipts import Receipt
from ccn_proto.registry import ConsentReply, RegisterNodeReply, StartSessionReply

MAX_REPLY_BYTES = 64 * 1024
R = TypeVar("R")


class EdgeError(Exception):
    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class EdgeUnavailable(EdgeError):
    """Unreachable, 5xx, 429, or a reply that was cut short: worth another try later."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class EdgeRefused(EdgeError):
    """401 or 403: the node's credentials are refused (opted out, banned, revoked)."""


class EdgeRejected(EdgeError):
    """Another 4xx: the request itself is wrong for this edge."""


class _ErrorBody(msgspec.Struct, frozen=True):
    code: str = "unknown"
    message: str = ""


class EdgeHttp:
    def __init__(self, http: aiohttp.ClientSession, base_url: str, *, timeout_s: float, user_agent: str) -> None:
        self._http = http
        self._base_url = base_url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.user_agent = user_agent

    async def register(
        self, idempotency_key: str, node_version: str, public_key: str | None = None
    ) -> RegisterNodeReply:
        body = RegisterNodeRequest(
            consent_flag=True, user_agent=self.user_agent, node_version=node_version, public_key=public_key
        )
        return await self._post(
            "/compute/register-node", body, RegisterNodeReply, headers={"Idempotency-Key": idempotency_key}
        )

    async def consent(self, api_token: str, version: str, consent_hash: str) -> ConsentReply:
        body = ConsentRequest(consent_version=version, consent_hash=consent_hash)
        return await self._post("/compute/consent", body, ConsentReply, token=api_token)

    async def start_session(self, api_token: str) -> StartSessionReply:
        body = StartSessionRequest(user_agent=self.user_agent)
        return await self._post("/compute/session", body, StartSessionReply, token=api_token)

    async def job_receipt(self, session_token: str, job_id: str) -> Receipt | None:
        """The receipt for this node's result of `job_id`; None while none is issued (404)."""
        path = f"/compute/jobs/{job_id}/receipt"
        headers = {"User-Agent": self.user_agent, "Authorization": f"Bearer {session_token}"}
        try:
            async with self._http.get(
                self._base_url + path, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as response:
                data = await _read_bounded(response)
                status = response.status
                retry_after = _retry_after(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise EdgeUnavailable(f"GET {path}: {type(exc).__name__}: {exc}") from None
        if status == 404:
            return None
        if 200 <= status < 300:
            try:
                return decode_receipt(data)
            except MalformedReceipt as exc:
                raise EdgeRejected(f"GET {path}: not a receipt ({exc.message})", status=status) from None
        self._raise_for(f"GET {path}", status, data, retry_after)

    def _raise_for(self, what: str, status: int, data: bytes, retry_after: float | None) -> NoReturn:
        error = _error_body(data)
        message = f"{what}: {status} {error.code}: {error.message}"
        if status in (401, 403):
            raise EdgeRefused(message, status=status, code=error.code)
        if status == 429 or status >= 500:
            raise EdgeUnavailable(message, status=status, retry_after=retry_after)
        raise EdgeRejected(message, status=status, code=error.code)

    async def _post(
        self,
        path: str,
        body: msgspec.Struct,
        reply_type: type[R],
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> R:
        request_headers = {"Content-Type": "application/json", "User-Agent": self.user_agent, **(headers or {})}
        if token is not None:
            request_headers["Authorization"] = f"Bearer {token}"
        try:
            async with self._http.post(
                self._base_url + path,
                data=msgspec.json.encode(body),
                headers=request_headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                data = await _read_bounded(response)
                status = response.status
                retry_after = _retry_after(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise EdgeUnavailable(f"POST {path}: {type(exc).__name__}: {exc}") from None
        if 200 <= status < 300:
            try:
                return msgspec.json.decode(data, type=reply_type)
            except msgspec.DecodeError as exc:
                raise EdgeRejected(f"POST {path}: unexpected reply ({exc})", status=status) from None
        self._raise_for(f"POST {path}", status, data, retry_after)


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(16 * 1024):
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise EdgeUnavailable(f"reply from {response.url.path} is over {MAX_REPLY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _error_body(data: bytes) -> _ErrorBody:
    try:
        return msgspec.json.decode(data, type=_ErrorBody)
    except msgspec.DecodeError:
        return _ErrorBody(message=data[:200].decode("utf-8", "replace"))


def _retry_after(raw: str | None) -> float | None:
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None
