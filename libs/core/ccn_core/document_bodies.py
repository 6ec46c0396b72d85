"""Document bodies in a JetStream object store, named by the sha256 of their bytes.

The fetch proxy will put what it fetches here; a job's payload then names a body by reference
(ccn_proto.documents.DocumentRef: sha256, size, media type) instead of carrying it, and the
side that runs the job reads it back through `ObjectStoreBodies.read`, a
ccn_jobs.documents.BodyReader. Content addressing makes a put idempotent (the same bytes get
the same name) and a read checkable: the reader asks for the size it expects, refuses to
download anything else, and the caller (ccn_jobs.documents.fetch_bodies) checks the digest.

The object store checks each object's own digest as it streams; the sha256 in the name is a
second, independent check that the body is the one the payload meant."""

from __future__ import annotations

import hashlib
import re

from nats.js import JetStreamContext
from nats.js.api import ObjectStoreConfig, StorageType
from nats.js.errors import BucketNotFoundError, NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

BODY_BUCKET = "CCN_DOCUMENT_BODIES"
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")


class BodyNotFound(LookupError):
    """No body of this digest and size is in the store."""


async def open_body_store(
    js: JetStreamContext, bucket: str = BODY_BUCKET, *, create: bool = False, replicas: int = 1
) -> ObjectStore:
    """The bucket, created when asked and absent (`ccn up` and tests create it; readers don't)."""
    try:
        return await js.object_store(bucket)
    except (BucketNotFoundError, NotFoundError):
        if not create:
            raise
    return await js.create_object_store(
        bucket,
        config=ObjectStoreConfig(
            bucket=bucket,
            description="document bodies by sha256, put by the fetch proxy, read for document jobs",
            storage=StorageType.FILE,
            replicas=replicas,
        ),
    )


class ObjectStoreBodies:
    """Read and put bodies by their sha256 hex digest."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    async def put(self, data: bytes) -> str:
        """Store the bytes under their digest (once: a second put of the same bytes is a no-op)."""
        digest = hashlib.sha256(data).hexdigest()
        try:
            info = await self._store.get_info(digest)
        except ObjectNotFoundError:
            info = None
        if info is None or info.size != len(data):
            await self._store.put(digest, data)
        return digest

    async def read(self, sha256: str, size: int) -> bytes:
        """The body named `sha256`, if it is `size` bytes; BodyNotFound otherwise. Its size is
        read from the object's info before any chunk is downloaded."""
        if not _SHA256.match(sha256):
            raise BodyNotFound(f"{sha256!r} is not a sha256 hex digest")
        try:
            info = await self._store.get_info(sha256)
        except ObjectNotFoundError:
            raise BodyNotFound(f"no body {sha256}") from None
        if info.is_link():
            raise BodyNotFound(f"{sha256} is a link, not a body")
        if info.size != size:
            raise BodyNotFound(f"the body {sha256} is {info.size} bytes, not {size}")
        result = await self._store.get(sha256)
        return bytes(result.data or b"")
