"""OpenTelemetry traces, with the context carried across NATS in a `traceparent` header."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_propagator = TraceContextTextMapPropagator()


def configure_tracing(
    service: str, exporter: str = "none", span_exporter: SpanExporter | None = None, *, otlp_endpoint: str = ""
) -> TracerProvider:
    """`exporter`: "none" (spans made, ids logged, nothing exported), "console" (stderr) or "otlp"
    (OTLP over HTTP to `otlp_endpoint`, an OpenTelemetry collector: batched, sent from a thread of
    its own, so a slow collector never holds the event loop). A test passes its own
    `span_exporter` to read spans back. The caller shuts the provider down at exit (flushing)."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if span_exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    elif exporter == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp":
        if not otlp_endpoint:
            raise ValueError("CCN_OTEL_EXPORTER=otlp needs CCN_OTEL_ENDPOINT, e.g. http://otel-collector:4318")
        # imported only here: the exporter and its protobuf code are a third of a second of
        # every process's start, and most run without a collector
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        otlp = OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces", timeout=5)
        provider.add_span_processor(BatchSpanProcessor(otlp, max_queue_size=8192))
    elif exporter != "none":
        raise ValueError(f"unknown CCN_OTEL_EXPORTER {exporter!r}: use none, console or otlp")
    trace.set_tracer_provider(provider)
    return provider


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def inject_trace(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """The current span's `traceparent` (and `tracestate`) into `headers`, as the W3C propagator
    writes them. Formatted once per span and reused: every event a command appends carries its
    span's header, and the propagator's generic path was 4 % of the scheduler's time."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return headers
    global _last_span, _last_headers
    if span_context is not _last_span:
        written: dict[str, str] = {}
        _propagator.inject(written)
        _last_span, _last_headers = span_context, written
    headers.update(_last_headers)
    return headers


# the span context whose headers were formatted last, and those headers (one event loop a process)
_last_span: trace.SpanContext | None = None
_last_headers: dict[str, str] = {}


def extract_trace(headers: Mapping[str, str] | None) -> otel_context.Context:
    return _propagator.extract(dict(headers or {}))
