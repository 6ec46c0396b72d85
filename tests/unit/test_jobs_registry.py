"""The job-type registry: payloads and results are checked against their type's schema, and
every failure names what was wrong."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from ccn_core.errors import BadInput, CcnError, PayloadTooLarge, Unprocessable, error_from_code
from ccn_jobs.errors import InvalidPayload, InvalidResult, UnknownJobType
from ccn_jobs.extract_text import (
    MAX_HTML_CHARS,
    MAX_URL_CHARS,
    ExtractTextPayload,
    ExtractTextResult,
    extract_text,
)
from ccn_jobs.registry import (
    JOB_TYPES,
    batch_job_refusal,
    decode_payload,
    decode_result,
    get_job_type,
    payload_refusal,
    result_to_builtins,
    run_job,
)
from ccn_proto.scheduler import MAX_BATCH_JOB_BYTES, BatchJob

HTML = (
    "<html><body><article><h1>Seed Fund</h1><p>"
    + "Small grants for new community groups. " * 8
    + "</p></article></body></html>"
)
GOOD_RESULT: dict[str, Any] = {
    "text": "Seed Fund",
    "title": "Seed Fund",
    "language": "en",
    "confidence": 0.5,
    "chars": 9,
}


def test_registry_lists_extract_text_under_its_own_name() -> None:
    job = JOB_TYPES["extract_text"]
    assert job.name == "extract_text"
    assert job.version == "3"
    assert job.payload_type is ExtractTextPayload
    assert job.result_type is ExtractTextResult
    assert job.handler is extract_text
    assert all(name == job.name for name, job in JOB_TYPES.items())


def test_registry_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(TypeError):
        JOB_TYPES["evil"] = JOB_TYPES["extract_text"]  # type: ignore[index]


def test_payload_decodes_the_same_from_bytes_and_from_a_dict() -> None:
    raw = {"html": HTML, "url": "https://seed.example/grants/seed-fund"}
    from_dict = decode_payload("extract_text", raw)
    assert from_dict == ExtractTextPayload(html=HTML, url="https://seed.example/grants/seed-fund")
    assert decode_payload("extract_text", msgspec.json.encode(raw)) == from_dict
    assert decode_payload("extract_text", {"html": HTML}) == ExtractTextPayload(html=HTML, url=None)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"html": 1}, "html"),
        ({}, "html"),
        ({"url": "https://x.example"}, "html"),
        ({"html": "x", "extra": True}, "extra"),
        ({"html": "x", "url": "ftp://x.example/file"}, "url"),
        ({"html": "x", "url": "https://x.example/a b"}, "url"),
        ({"html": "x", "url": ""}, "url"),
        ({"html": "x", "url": "https://x.example/" + "a" * MAX_URL_CHARS}, "url"),
        ({"html": "x" * (MAX_HTML_CHARS + 1)}, "html"),
        (b'{"html": ["<p>"]}', "html"),
        (b"{not json", None),
        (b"[1, 2]", None),
        (["html"], None),
    ],
    ids=[
        "html-not-a-string",
        "html-missing",
        "only-url",
        "unknown-field",
        "url-not-http",
        "url-with-space",
        "url-empty",
        "url-too-long",
        "html-too-long",
        "html-a-list-in-json",
        "malformed-json",
        "json-array",
        "not-an-object",
    ],
)
def test_bad_payloads_name_the_field(raw: Any, field: str | None) -> None:
    with pytest.raises(InvalidPayload) as caught:
        decode_payload("extract_text", raw)
    assert caught.value.field == field
    assert caught.value.job_type == "extract_text"
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith("extract_text: ")


def test_html_at_the_limit_is_accepted() -> None:
    payload = decode_payload("extract_text", {"html": "x" * MAX_HTML_CHARS})
    assert isinstance(payload, ExtractTextPayload)


@pytest.mark.parametrize("call", [decode_payload, decode_result, run_job])
def test_unknown_job_type_is_refused_by_every_entry_point(call: Any) -> None:
    with pytest.raises(UnknownJobType) as caught:
        call("mine_bitcoin", {"html": HTML})
    assert caught.value.job_type == "mine_bitcoin"
    assert "extract_text" in str(caught.value)
    with pytest.raises(UnknownJobType):
        get_job_type("Extract_Text")


def test_run_job_decodes_then_runs_the_handler() -> None:
    result = run_job("extract_text", msgspec.json.encode({"html": HTML}))
    assert isinstance(result, ExtractTextResult)
    assert result.title == "Seed Fund"
    assert result.language == "en"
    assert result_to_builtins(result) == {
        "text": result.text,
        "title": "Seed Fund",
        "language": "en",
        "confidence": result.confidence,
        "chars": len(result.text),
        "media_type": "text/html",
        "pages": None,
        "extractor_version": "3",
    }
    with pytest.raises(InvalidPayload):
        run_job("extract_text", {"html": HTML, "lang": "en"})


def test_a_good_result_decodes() -> None:
    assert decode_result("extract_text", GOOD_RESULT) == ExtractTextResult(**GOOD_RESULT)
    assert decode_result("extract_text", msgspec.json.encode(GOOD_RESULT)) == ExtractTextResult(**GOOD_RESULT)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"confidence": 1.5}, "confidence"),
        ({"confidence": -0.1}, "confidence"),
        ({"language": "English"}, "language"),
        ({"title": ""}, "title"),
        ({"chars": -1}, "chars"),
        ({"checksum": "abc"}, "checksum"),
        ({"chars": 3}, None),  # disagrees with len(text): checked across fields
    ],
    ids=[
        "confidence-above-1",
        "confidence-negative",
        "language-not-a-code",
        "empty-title",
        "negative-chars",
        "extra",
        "chars-lies",
    ],
)
def test_bad_results_are_refused(change: dict[str, Any], field: str | None) -> None:
    with pytest.raises(InvalidResult) as caught:
        decode_result("extract_text", {**GOOD_RESULT, **change})
    assert caught.value.field == field
    assert not isinstance(caught.value, InvalidPayload)


class EchoPayload(msgspec.Struct, forbid_unknown_fields=True):
    text: str


def good_job(**change: Any) -> BatchJob:
    return BatchJob(**{"job_type": "extract_text", "payload": {"html": HTML}, "item_key": "k-1", **change})


@pytest.mark.parametrize(
    ("job", "error", "field"),
    [
        (good_job(job_type="mine_bitcoin"), Unprocessable, "job_type"),
        (good_job(job_type="Not A Type!"), Unprocessable, "job_type"),
        (good_job(payload={"html": 5}), BadInput, "payload.html"),
        (good_job(payload={"url": "https://x.example"}), BadInput, "payload.html"),
        (good_job(payload={"html": "x" * (MAX_BATCH_JOB_BYTES + 1)}), PayloadTooLarge, "payload"),
        (good_job(item_key="k" * 129), BadInput, "item_key"),
        (good_job(priority=101), BadInput, "priority"),
        (good_job(lease_s=0.5), BadInput, "lease_s"),
    ],
    ids=[
        "unknown-type",
        "type-off-pattern",
        "payload-wrong-type",
        "payload-missing-field",
        "over-the-job-cap",
        "key-too-long",
        "priority-out-of-range",
        "lease-too-short",
    ],
)
def test_a_batch_job_the_scheduler_would_refuse_is_refused_with_the_error_it_would_give(
    job: BatchJob, error: type[CcnError], field: str
) -> None:
    refusal = batch_job_refusal(job)
    assert refusal is not None
    # the codes are ccn_core's: each maps back to the error (and HTTP status) the scheduler gives
    refused = error_from_code(refusal.code, refusal.message, field=refusal.field)
    assert (type(refused), refused.field) == (error, field), refusal
    assert refusal.message


def test_a_batch_job_the_scheduler_would_take_is_not_refused() -> None:
    assert batch_job_refusal(good_job()) is None
    at_the_cap = good_job(payload={"html": "x"})
    spare = MAX_BATCH_JOB_BYTES - len(msgspec.json.encode(at_the_cap))
    assert batch_job_refusal(good_job(payload={"html": "x" * (1 + spare)})) is None


def test_payloads_are_checked_against_the_types_given() -> None:
    echo = {"echo": EchoPayload}
    assert payload_refusal("echo", {"text": "hi"}, payload_types=echo) is None
    refusal = payload_refusal("echo", {"text": 1}, field="jobs[2].payload", payload_types=echo)
    assert refusal is not None and (refusal.code, refusal.field) == ("bad_input", "jobs[2].payload.text")
    refusal = payload_refusal("extract_text", {"html": HTML}, payload_types=echo)
    assert refusal is not None and (refusal.code, refusal.field) == ("unprocessable", "job_type")
    assert "known: echo" in refusal.message
    refusal = payload_refusal("extract_text", {"html": 1})
    assert refusal is not None and refusal.field == "payload.html"
