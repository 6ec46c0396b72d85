"""Every job type by name, and the checks each side of the system runs against it.

The scheduler decodes a payload before it creates a job (`decode_payload`), a node runs an
offered job (`run_job`), and the validation service decodes a node's result (`decode_result`).
All three accept either JSON bytes or the dict a JSON event carries.

Whether a job can be created is decided here once (`payload_refusal`, `batch_job_refusal`), as
the refusal a command reply carries: the scheduler refuses with it, and the edge and the CLI
check every line of a batch with it before any of the batch is sent, so a refused batch creates
nothing. The refusal's code is one of ccn_core.errors' codes (this library sits below ccn_core)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import msgspec

from ccn_jobs.classify_document import CLASSIFY_DOCUMENT
from ccn_jobs.crawl_domain_page import CRAWL_DOMAIN_PAGE
from ccn_jobs.crawl_multi_hop import CRAWL_MULTI_HOP
from ccn_jobs.documents import resolve_references
from ccn_jobs.enrich_opportunity import ENRICH_OPPORTUNITY
from ccn_jobs.errors import InvalidJobData, InvalidPayload, InvalidResult, UnknownJobType
from ccn_jobs.extract_entities import EXTRACT_ENTITIES
from ccn_jobs.extract_structured_fields import EXTRACT_STRUCTURED_FIELDS
from ccn_jobs.extract_text import EXTRACT_TEXT
from ccn_jobs.fetch_document import FETCH_DOCUMENT
from ccn_jobs.job_type import JobType
from ccn_jobs.link_entities import LINK_ENTITIES
from ccn_jobs.normalize_funders import NORMALIZE_FUNDERS
from ccn_jobs.normalize_locations import NORMALIZE_LOCATIONS
from ccn_jobs.normalize_opportunities import NORMALIZE_OPPORTUNITIES
from ccn_jobs.parse_pdf import PARSE_PDF
from ccn_jobs.score_opportunity import SCORE_OPPORTUNITY
from ccn_proto.commands import CommandError
from ccn_proto.nodes import ConsentScope
from ccn_proto.scheduler import MAX_BATCH_JOB_BYTES, BatchJob

# Any: each entry has its own payload and result types; callers go through the functions below,
# which check a document against the entry's types before the handler sees it.
JOB_TYPES: Mapping[str, JobType[Any, Any]] = MappingProxyType(
    {
        job.name: job
        for job in (
            EXTRACT_TEXT,
            CLASSIFY_DOCUMENT,
            EXTRACT_ENTITIES,
            LINK_ENTITIES,
            ENRICH_OPPORTUNITY,
            SCORE_OPPORTUNITY,
            PARSE_PDF,
            CRAWL_DOMAIN_PAGE,
            EXTRACT_STRUCTURED_FIELDS,
            CRAWL_MULTI_HOP,
            FETCH_DOCUMENT,
            NORMALIZE_FUNDERS,
            NORMALIZE_OPPORTUNITIES,
            NORMALIZE_LOCATIONS,
        )
    }
)

RawDocument = bytes | Mapping[str, Any]
# what a job type's payload must meet, by name: every job type here, or a test's own
PayloadTypes = Mapping[str, type[msgspec.Struct]]
PAYLOAD_TYPES: PayloadTypes = MappingProxyType({name: job.payload_type for name, job in JOB_TYPES.items()})
# job type → the consent scope that covers it
CONSENT_SCOPE_OF: Mapping[str, ConsentScope] = MappingProxyType(
    {name: job.consent_scope for name, job in JOB_TYPES.items()}
)


def get_job_type(job_type: str) -> JobType[Any, Any]:
    try:
        return JOB_TYPES[job_type]
    except KeyError:
        raise UnknownJobType(job_type, sorted(JOB_TYPES)) from None


def decode_payload(job_type: str, raw: RawDocument, payload_types: PayloadTypes = PAYLOAD_TYPES) -> msgspec.Struct:
    """The payload as its job type's Struct; UnknownJobType or InvalidPayload otherwise."""
    schema = payload_types.get(job_type)
    if schema is None:
        raise UnknownJobType(job_type, sorted(payload_types))
    return _decode(job_type, raw, schema, InvalidPayload)


def payload_refusal(
    job_type: str, payload: RawDocument, *, field: str = "payload", payload_types: PayloadTypes = PAYLOAD_TYPES
) -> CommandError | None:
    """Why no job of `job_type` can carry this payload, or None when one can: an unknown type is
    unprocessable (naming `job_type`), a payload off its type's schema bad input (naming
    `<field>.<path>`, or `field` when the payload as a whole is wrong)."""
    try:
        decode_payload(job_type, payload, payload_types)
    except UnknownJobType as exc:
        return CommandError(code="unprocessable", message=str(exc), field="job_type")
    except InvalidPayload as exc:
        return CommandError(
            code="bad_input",
            message=f"payload is not a valid {job_type} payload: {exc.reason}",
            field=f"{field}.{exc.field}" if exc.field else field,
        )
    return None


_read_batch_job = msgspec.json.Decoder(BatchJob).decode


def batch_job_refusal(job: BatchJob, payload_types: PayloadTypes = PAYLOAD_TYPES) -> CommandError | None:
    """Why the scheduler would refuse this item of a batch, or None when it would take it: its
    encoding over MAX_BATCH_JOB_BYTES (payload_too_large: it would not fit in a command), a field
    off BatchJob's bounds as the scheduler decodes it (bad_input), then `payload_refusal`."""
    encoded = msgspec.json.encode(job)
    if len(encoded) > MAX_BATCH_JOB_BYTES:
        return CommandError(
            code="payload_too_large",
            message=f"the job is {len(encoded)} bytes encoded; one job may take at most {MAX_BATCH_JOB_BYTES}",
            field="payload",
        )
    refusal = payload_refusal(job.job_type, job.payload, payload_types=payload_types)
    if refusal is not None:
        return refusal
    try:
        _read_batch_job(encoded)
    except msgspec.ValidationError as exc:
        problem = InvalidJobData.from_msgspec(job.job_type, exc)
        return CommandError(code="bad_input", message=problem.reason, field=problem.field)
    return None


def decode_result(job_type: str, raw: RawDocument) -> msgspec.Struct:
    """A node's result as its job type's Struct; UnknownJobType or InvalidResult otherwise."""
    job = get_job_type(job_type)
    return _decode(job.name, raw, job.result_type, InvalidResult)


def run_job(job_type: str, raw_payload: RawDocument, bodies: Mapping[str, bytes] | None = None) -> msgspec.Struct:
    """Decode the payload and run the handler: what a node does with an offered job. `bodies`
    are the documents the payload names by reference, fetched and checked beforehand
    (ccn_jobs.documents.fetch_bodies); a reference without its body fails as `not_resolved`."""
    job = get_job_type(job_type)
    payload = decode_payload(job_type, raw_payload)
    if bodies:
        payload = resolve_references(payload, bodies)
    result: msgspec.Struct = job.handler(payload)
    return result


def result_to_builtins(result: msgspec.Struct) -> dict[str, Any]:
    """The result as the plain dict that `JobResult.result` carries (and is checksummed)."""
    builtins: dict[str, Any] = msgspec.to_builtins(result)
    return builtins


def _decode(
    job_type: str, raw: RawDocument, struct_type: type[msgspec.Struct], error: type[InvalidJobData]
) -> msgspec.Struct:
    try:
        if isinstance(raw, bytes | bytearray | memoryview):
            return msgspec.json.decode(raw, type=struct_type)
        return msgspec.convert(raw, struct_type)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise error.from_msgspec(job_type, exc) from exc
