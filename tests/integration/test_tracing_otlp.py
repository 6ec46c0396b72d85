"""CCN_OTEL_EXPORTER=otlp sends spans over OTLP/HTTP to the collector's /v1/traces, with the
correlation id as an attribute, and flushes what is batched when the provider shuts down."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ccn_core.tracing import configure_tracing


class Collector:
    def __init__(self) -> None:
        self.requests: list[tuple[str, ExportTraceServiceRequest]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                collector.requests.append((self.path, ExportTraceServiceRequest.FromString(body)))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                """quiet"""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def collector() -> Iterator[Collector]:
    found = Collector()
    thread = threading.Thread(target=found.server.serve_forever, daemon=True)
    thread.start()
    yield found
    found.server.shutdown()


def test_spans_reach_the_collector_with_the_correlation_id(collector: Collector) -> None:
    provider = configure_tracing("scheduler", "otlp", otlp_endpoint=collector.url + "/")
    with provider.get_tracer("test").start_as_current_span("command scheduler.claim") as span:
        span.set_attribute("ccn.correlation_id", "corr-otlp-1")
    provider.shutdown()
    ((path, request),) = collector.requests
    assert path == "/v1/traces"
    (resource_spans,) = request.resource_spans
    service = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}["service.name"]
    assert service == "scheduler"
    (sent,) = [span for scope in resource_spans.scope_spans for span in scope.spans]
    assert sent.name == "command scheduler.claim"
    assert {kv.key: kv.value.string_value for kv in sent.attributes} == {"ccn.correlation_id": "corr-otlp-1"}


def test_otlp_without_an_endpoint_is_refused() -> None:
    with pytest.raises(ValueError, match="CCN_OTEL_ENDPOINT"):
        configure_tracing("edge", "otlp")
