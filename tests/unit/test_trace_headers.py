"""inject_trace writes what the W3C propagator writes for the span current at the call, though it
formats each span's header once: a new span, nested or after, gets its own."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ccn_core.tracing import extract_trace, inject_trace

TRACER = TracerProvider().get_tracer("test")


def propagated() -> dict[str, str]:
    headers: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(headers)
    return headers


def test_outside_a_span_nothing_is_written() -> None:
    assert inject_trace({"Ccn-Type": "job.created"}) == {"Ccn-Type": "job.created"}


def test_each_span_gets_its_own_header_as_the_propagator_writes_it() -> None:
    seen = []
    for _ in range(2):
        with TRACER.start_as_current_span("command"):
            outer = inject_trace({})
            assert outer == propagated() and inject_trace({}) == outer
            with TRACER.start_as_current_span("append"):
                inner = inject_trace({"Ccn-Type": "job.created"})
                assert inner == {"Ccn-Type": "job.created", **propagated()}
            assert inject_trace({}) == outer  # back in the outer span: its header again
            seen += [outer["traceparent"], inner["traceparent"]]
    assert len(set(seen)) == 4
    assert inject_trace({}) == {}


def test_a_written_header_reads_back_as_its_span() -> None:
    with TRACER.start_as_current_span("command") as span:
        context = extract_trace(inject_trace({}))
    assert trace.get_current_span(context).get_span_context().span_id == span.get_span_context().span_id
