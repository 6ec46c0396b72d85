"""What every HTTP service here shares: the correlation id of a request, the one error body,
the access log, the probes, and a Litestar app assembled from them.

Errors map to HTTP here, once: a CcnError carries its status; a framework error (a parameter
that failed its declared constraints, an oversized body) gets the same body shape. Every
response carries the request's X-Correlation-ID (the caller's when sane, else a new one),
errors included, and so does every log line written while handling it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get
from litestar.datastructures import Headers, MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
    SecurityScheme,
)
from litestar.types import ASGIApp, ControllerRouterHandler, Message, Receive, Scope, Send

from ccn_core.commands import offending_field
from ccn_core.errors import ERRORS_BY_CODE, BadInput, CcnError
from ccn_core.ids import new_correlation_id
from ccn_core.logging import correlation, get_logger
from ccn_core.metrics import HTTP_REQUEST_SECONDS, exposition
from ccn_core.untrusted import decode_untrusted, explained, untrusted_decoder
from ccn_web.query_params import refuse_unbounded_parameters
from ccn_web.refusals import RefusalLog
from ccn_web.slow_clients import bounded_body_reads

log = get_logger("ccn.http")

Readiness = Callable[[], Awaitable[tuple[bool, dict[str, str]]]]
CORRELATION_HEADER = "x-correlation-id"
SANE_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_BODY = "data"  # what Litestar calls the request body in a handler's signature
_CODE_BY_STATUS = {cls.http_status: cls.code for cls in ERRORS_BY_CODE.values()}


def correlation_id(scope: Scope) -> str:
    """Fixed once per request and kept in its scope, so the log lines, the error body and the
    response header agree even though different layers produce them."""
    state: dict[str, Any] = scope["state"]
    value: str | None = state.get("correlation_id")
    if value is None:
        presented = Headers.from_scope(scope).get(CORRELATION_HEADER, "")
        value = presented if SANE_CORRELATION_ID.match(presented) else new_correlation_id()
        state["correlation_id"] = value
    return value


def _correlated_and_logged(service: str) -> Callable[[ASGIApp], ASGIApp]:
    """Binds the correlation id for everything the request does, writes one access line per
    request (method, path, status, duration: never the query string or headers, which may hold
    tokens) and observes its duration by route template (ccn_http_request_seconds)."""

    def wrap(app: ASGIApp) -> ASGIApp:
        return _correlated_logged_observed(app, service)

    return wrap


def _correlated_logged_observed(app: ASGIApp, service: str) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            with correlation(correlation_id(scope)):
                await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with correlation(correlation_id(scope)):
            try:
                await app(scope, receive, send_noting_status)
            finally:
                if scope["path"] not in _UNCOUNTED:
                    elapsed = time.perf_counter() - started
                    log.info(
                        "request",
                        method=scope["method"],
                        path=scope["path"],
                        status=status,
                        duration_ms=round(elapsed * 1000, 2),
                    )
                    # the template (/jobs/{job_id}), never the path: one series per route, not per id
                    route = scope.get("path_template") or "unmatched"
                    HTTP_REQUEST_SECONDS.labels(service, _method(scope["method"]), route, str(status)).observe(elapsed)

    return middleware


# probes and scrapes: frequent, and about the process rather than its clients
_UNCOUNTED = frozenset(("/healthz", "/readyz", "/metrics"))
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


def _method(method: str) -> str:
    return method if method in _METHODS else "other"


async def _echo_correlation_id(message: Message, scope: Scope) -> None:
    # a before_send hook, not middleware: error responses are sent outside the middleware stack
    if message["type"] == "http.response.start":
        MutableScopeHeaders.from_message(message)[CORRELATION_HEADER] = correlation_id(scope)


_body_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


async def _checked_request(request: Request[Any, Any, Any]) -> None:
    """Litestar runs one before_request hook, ahead of parsing any parameter or body."""
    await refuse_unbounded_parameters(request)
    await _strict_body(request)


async def _strict_body(request: Request[Any, Any, Any]) -> None:
    """Holds a JSON body to the project's rule before Litestar parses it (a before_request hook
    runs ahead of the handler's parameters). Litestar converts bodies leniently ("60" becomes 60,
    "true" becomes True) and lets a deep or non-UTF-8 body escape as a 500; here it meets the
    strict, bounded decoder every other entry point uses, and a refusal is a 400 naming the
    field. Litestar then parses only bodies that passed, which it reads the same way."""
    body_field = request.route_handler.parsed_fn_signature.parameters.get(_BODY)
    if body_field is None:
        return
    body = await request.body()
    if not body:
        return  # Litestar answers a missing body (or passes None where the body is optional)
    decoder = _body_decoders.get(body_field.annotation)
    if decoder is None:
        decoder = _body_decoders[body_field.annotation] = untrusted_decoder(body_field.annotation)
    decode_untrusted(body, decoder)


class ErrorBody(msgspec.Struct, frozen=True):
    code: str
    message: str
    field: str | None
    correlation_id: str


def error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    field: str | None = None
    headers: dict[str, str] = {}
    if isinstance(exc, CcnError):
        status, code, message, field = exc.http_status, exc.code, exc.message, exc.field
        if exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    elif isinstance(exc, ValidationException):
        # the framework checked a parameter against the handler's signature
        problem = exc.extra[0] if isinstance(exc.extra, list) and exc.extra else {}
        status, code = 400, BadInput.code
        message = explained(str(problem.get("message") or exc.detail))
        field = problem.get("key")
        if field == _BODY:
            # the body as a whole failed: name the field inside it, or say a body is missing
            field = offending_field(message)
            if message == repr(_BODY):
                message = "a JSON object body is required"
    elif isinstance(exc, HTTPException):
        status, message = exc.status_code, exc.detail
        code = _CODE_BY_STATUS.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")
    else:
        log.exception("unhandled error", path=request.url.path)
        status, code, message = 500, "internal", "internal error"
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 408:
        headers["Connection"] = "close"  # the rest of the body may still come: the connection is spent
    body = ErrorBody(code=code, message=message, field=field, correlation_id=correlation_id(request.scope))
    return Response(body, status_code=status, headers=headers)


def probes(service: str, ready: Readiness) -> list[ControllerRouterHandler]:
    """/healthz: the process answers. /readyz: it can do its work (its backends answer).
    /metrics: Prometheus (not routed by the Ingress: deploy/k8s/base/ingress.yaml)."""

    @get("/metrics", include_in_schema=False, sync_to_thread=False)
    def metrics() -> Response[bytes]:
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    @get("/healthz", include_in_schema=False, sync_to_thread=False)
    def healthz() -> dict[str, str]:
        return {"status": "alive", "service": service}

    @get("/readyz", include_in_schema=False)
    async def readyz() -> Response[dict[str, Any]]:
        ok, checks = await ready()
        return Response({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    return [healthz, readyz, metrics]


def create_http_app(
    *,
    service: str,
    title: str,
    route_handlers: Sequence[ControllerRouterHandler],
    ready: Readiness,
    max_body_bytes: int,
    body_timeout_s: float,
    security_schemes: Mapping[str, SecurityScheme | Reference] | None = None,
    dependencies: dict[str, Any] | None = None,
) -> Litestar:
    """A Litestar app with the project's conventions; OpenAPI at /schema (/schema/openapi.json).
    A request body must arrive within body_timeout_s of the first read (ccn_web.slow_clients)."""
    refusals = RefusalLog()

    def body_deadline(app: ASGIApp) -> ASGIApp:
        return bounded_body_reads(app, timeout_s=body_timeout_s, refusals=refusals)

    app = Litestar(
        route_handlers=[*route_handlers, *probes(service, ready)],
        dependencies=dependencies,
        middleware=[_correlated_and_logged(service), body_deadline],
        before_send=[_echo_correlation_id],
        before_request=_checked_request,
        exception_handlers={Exception: error_response},
        request_max_body_size=max_body_bytes,
        openapi_config=OpenAPIConfig(
            title=title,
            version="0.1.0",
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
            components=Components(security_schemes=dict(security_schemes or {})),
        ),
        logging_config=None,  # structlog (ccn_core.logging) owns logging
    )
    _document_error_bodies(app.openapi_schema)
    return app


_ERROR_BODY_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["code", "message", "field", "correlation_id"],
    properties={
        "code": Schema(type=OpenAPIType.STRING, description="bad_input, unauthorized, forbidden, not_found, …"),
        "message": Schema(type=OpenAPIType.STRING),
        "field": Schema(one_of=[Schema(type=OpenAPIType.STRING), Schema(type=OpenAPIType.NULL)]),
        "correlation_id": Schema(type=OpenAPIType.STRING),
    },
)
_REFUSALS = {
    "400": "Bad input: malformed or wrong-typed JSON, a field out of its bounds; `field` names it",
    "503": "A service or NATS behind this one is unavailable; retry after Retry-After",
}


def _document_error_bodies(document: OpenAPI) -> None:
    """Every refusal has the ErrorBody shape (error_response), whatever raised it; Litestar's
    generated document describes its own exception body instead. Fixed once, at app creation
    (the document is cached), so clients and fuzzers read what is really sent."""
    components = document.components
    components.schemas = {**(components.schemas or {}), "ErrorBody": _ERROR_BODY_SCHEMA}
    reference = Reference(ref="#/components/schemas/ErrorBody")
    for path, item in (document.paths or {}).items():
        if path in ("/healthz", "/readyz"):
            continue
        for operation in (item.get, item.put, item.post, item.delete, item.patch):
            if operation is None:
                continue
            responses = operation.responses = dict(operation.responses or {})
            statuses = set(_REFUSALS) | {code for code in responses if code[0] in "45"}
            if operation.security:
                statuses.add("401")
            for status in sorted(statuses):
                described = responses.get(status)
                description = _REFUSALS.get(status) or (
                    described.description
                    if isinstance(described, OpenAPIResponse) and described.description
                    else HTTPStatus(int(status)).phrase
                )
                responses[status] = OpenAPIResponse(
                    description=description, content={"application/json": OpenAPIMediaType(schema=reference)}
                )
