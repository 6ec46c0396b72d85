"""Document bodies by reference through a real JetStream object store: the fetch proxy's side
(put by sha256) and the job's side (read by reference, checked, resolved into the payload)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator

import msgspec
import nats
import pytest
from nats.js.errors import NotFoundError

from ccn_core.document_bodies import KNOWN_FOR_S, BodyNotFound, ObjectStoreBodies, open_body_store
from ccn_jobs.demo_documents import grant_pdf
from ccn_jobs.documents import fetch_bodies
from ccn_jobs.errors import DocumentRefused
from ccn_jobs.registry import decode_payload, run_job
from ccn_proto.documents import PDF, DocumentRef, ParsePdfResult

PDF_BYTES = grant_pdf(7, pages=3)


@pytest.fixture
async def bodies(nats_url: str) -> AsyncIterator[ObjectStoreBodies]:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    bucket = f"TEST_BODIES_{secrets.token_hex(4).upper()}"
    try:
        yield ObjectStoreBodies(await open_body_store(js, bucket, create=True))
    finally:
        await js.delete_object_store(bucket)
        await nc.close()


async def test_a_reader_does_not_create_the_bucket(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        with pytest.raises(NotFoundError):
            await open_body_store(nc.jetstream(), f"TEST_ABSENT_{secrets.token_hex(4).upper()}")
    finally:
        await nc.close()


async def test_put_names_a_body_by_its_sha256_and_is_idempotent(bodies: ObjectStoreBodies) -> None:
    digest = await bodies.put(PDF_BYTES)
    assert digest == hashlib.sha256(PDF_BYTES).hexdigest()
    assert await bodies.put(PDF_BYTES) == digest
    assert await bodies.read(digest, len(PDF_BYTES)) == PDF_BYTES


async def test_a_job_by_reference_reads_its_body_from_the_store(bodies: ObjectStoreBodies) -> None:
    digest = await bodies.put(PDF_BYTES)
    raw = {"document": {"kind": "ref", "sha256": digest, "size": len(PDF_BYTES), "media_type": PDF}}
    payload = decode_payload("parse_pdf", raw)
    fetched = await fetch_bodies(payload, bodies, "parse_pdf")
    result = run_job("parse_pdf", raw, bodies=fetched)
    assert isinstance(result, ParsePdfResult) and result.page_count == 3
    assert msgspec.json.encode(result) == msgspec.json.encode(run_job("parse_pdf", raw, bodies={digest: PDF_BYTES}))


@pytest.mark.parametrize(
    ("sha256", "size", "code"),
    [("0" * 64, 10, "body_missing"), (None, 1, "body_missing")],
    ids=["absent", "wrong-size"],
)
async def test_a_reference_the_store_cannot_satisfy_fails_typed(
    bodies: ObjectStoreBodies, sha256: str | None, size: int, code: str
) -> None:
    digest = await bodies.put(PDF_BYTES)
    ref = DocumentRef(sha256=sha256 or digest, size=size, media_type=PDF)
    with pytest.raises(DocumentRefused) as caught:
        await fetch_bodies(decode_payload("parse_pdf", {"document": msgspec.to_builtins(ref)}), bodies, "parse_pdf")
    assert caught.value.code == code


async def test_a_body_stored_under_another_digest_is_caught(bodies: ObjectStoreBodies) -> None:
    """A writer that names bytes wrongly (the store checks only its own digest) is caught by the
    reference's sha256."""
    impostor = b"%PDF-1.7 not the document you are looking for %%EOF"
    wanted = hashlib.sha256(PDF_BYTES).hexdigest()
    await bodies._store.put(wanted, impostor)
    ref = DocumentRef(sha256=wanted, size=len(impostor), media_type=PDF)
    with pytest.raises(DocumentRefused) as caught:
        await fetch_bodies(decode_payload("parse_pdf", {"document": msgspec.to_builtins(ref)}), bodies, "parse_pdf")
    assert caught.value.code == "body_mismatch"


async def test_a_name_that_is_not_a_digest_is_not_looked_up(bodies: ObjectStoreBodies) -> None:
    with pytest.raises(BodyNotFound):
        await bodies.read("../../etc/passwd", 10)


async def test_a_body_seen_stored_is_put_again_without_asking_the_store_for_a_while(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    bucket = f"TEST_BODIES_{secrets.token_hex(4).upper()}"
    now = [0.0]
    try:
        store = await open_body_store(js, bucket, create=True)
        asked: list[str] = []
        get_info = store.get_info

        async def counted(name: str, *args: object, **kwargs: object) -> object:
            asked.append(name)
            return await get_info(name, *args, **kwargs)  # type: ignore[arg-type]

        store.get_info = counted  # type: ignore[method-assign,assignment]
        bodies = ObjectStoreBodies(store, clock=lambda: now[0])
        digest = await bodies.put(PDF_BYTES)
        first = len(asked)
        assert await bodies.put(PDF_BYTES) == digest and len(asked) == first  # remembered: no round trip
        now[0] += KNOWN_FOR_S + 1
        assert await bodies.put(PDF_BYTES) == digest and len(asked) == first + 1  # asked again, found
        assert await bodies.read(digest, len(PDF_BYTES)) == PDF_BYTES
    finally:
        await js.delete_object_store(bucket)
        await nc.close()
