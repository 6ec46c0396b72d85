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
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import ObjectInfo, ObjectStoreConfig, StorageType
from nats.js.errors import BucketNotFoundError, NotFoundError, ObjectDeletedError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

BODY_BUCKET = "CCN_DOCUMENT_BODIES"
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")


class BodyNotFound(LookupError):
    """No body of this digest and size is in the store."""


class BodySizeMismatch(BodyNotFound):
    """A body of this digest is stored, but not of the size asked for: the reference and the
    store disagree (a reader treats it as no body; the edge says which, as a conflict)."""


class BodyCorrupt(Exception):
    """A stored body's chunks are not the bytes its name and size promise; found mid-stream."""


async def open_body_store(
    js: JetStreamContext, bucket: str = BODY_BUCKET, *, create: bool = False, replicas: int = 1
) -> ObjectStore:
    """The bucket, created when asked and absent (`ccn topology apply`, and so `ccn up`, creates it;
    readers don't)."""
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


def body_digest(data: bytes) -> str:
    """The name a body is stored under: its sha256, hex."""
    return hashlib.sha256(data).hexdigest()


# bodies this process stored or found stored, remembered a while: the store keeps bodies with no
# age limit and nothing deletes them, so a body seen stored is there still, and a page fetched
# again unchanged (a recrawl without validators, one page under two URLs) costs no round trip
KNOWN_BODIES = 10_000
KNOWN_FOR_S = 3600.0


class ObjectStoreBodies:
    """Read and put bodies by their sha256 hex digest."""

    def __init__(self, store: ObjectStore, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._known: OrderedDict[str, tuple[int, float]] = OrderedDict()  # digest -> (size, until)

    async def put(self, data: bytes) -> str:
        """Store the bytes under their digest (once: a second put of the same bytes is a no-op)."""
        digest = body_digest(data)
        known = self._known.get(digest)
        now = self._clock()
        if known is not None and known[0] == len(data) and now < known[1]:
            return digest
        try:
            info = await self._store.get_info(digest)
        except ObjectNotFoundError:
            info = None
        if info is None or info.size != len(data):
            await self._store.put(digest, data)
        self._known[digest] = (len(data), now + KNOWN_FOR_S)
        self._known.move_to_end(digest)
        while len(self._known) > KNOWN_BODIES:
            self._known.popitem(last=False)
        return digest

    async def read(self, sha256: str, size: int) -> bytes:
        """The body named `sha256`, if it is `size` bytes; BodyNotFound otherwise. Its size is
        read from the object's info before any chunk is downloaded."""
        await checked_info(self._store, sha256, size)
        result = await self._store.get(sha256)
        return bytes(result.data or b"")


async def stored_info(store: ObjectStore, sha256: str) -> ObjectInfo:
    """The stored object's info, if it is a body named `sha256`, of whatever size."""
    if not _SHA256.match(sha256):
        raise BodyNotFound(f"{sha256!r} is not a sha256 hex digest")
    try:
        info = await store.get_info(sha256)
    except (ObjectNotFoundError, ObjectDeletedError):
        raise BodyNotFound(f"no body {sha256}") from None
    if info.is_link() or not info.nuid:
        raise BodyNotFound(f"{sha256} is a link, not a body")
    return info


async def checked_info(store: ObjectStore, sha256: str, size: int) -> ObjectInfo:
    """The stored object's info, if it is a body named `sha256` of `size` bytes."""
    info = await stored_info(store, sha256)
    if info.size != size:
        raise BodySizeMismatch(f"the body {sha256} is {info.size} bytes, not {size}")
    return info


@dataclass(frozen=True, slots=True)
class StoredBody:
    """A body found and checked against its reference, not yet read: `chunks()` reads it."""

    sha256: str
    size: int
    chunks_subject: str
    stream: str
    js: JetStreamContext

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, one stored chunk at a time (128 KiB as the object store writes them), each
        asked for only when the one before has been taken: a slow consumer holds one chunk,
        never the body. Bytes past the size, or a digest that is not the name, raise BodyCorrupt
        before the last chunk is given out, so a consumer never gets all of a wrong body."""
        digest = hashlib.sha256()
        given = 0
        sequence = 1
        while given < self.size:
            try:
                message = await self.js.get_msg(self.stream, seq=sequence, subject=self.chunks_subject, next=True)
            except NotFoundError:
                raise BodyCorrupt(f"the body {self.sha256} ends after {given} of its {self.size} bytes") from None
            data = message.data or b""
            if message.seq is None or not data or given + len(data) > self.size:
                raise BodyCorrupt(f"the body {self.sha256} has more than its {self.size} bytes, or an empty chunk")
            given += len(data)
            digest.update(data)
            if given == self.size and digest.hexdigest() != self.sha256:
                raise BodyCorrupt(f"the body stored as {self.sha256} has the sha256 {digest.hexdigest()}")
            yield data
            sequence = message.seq + 1
        if self.size == 0 and digest.hexdigest() != self.sha256:
            raise BodyCorrupt(f"the empty body is not {self.sha256}")


class BodyStreams:
    """Bodies to pass on without holding them (the edge serves them to nodes this way)."""

    def __init__(self, js: JetStreamContext, bucket: str = BODY_BUCKET) -> None:
        self._js = js
        self._bucket = bucket
        self._store: ObjectStore | None = None

    async def open(self, sha256: str, size: int | None) -> StoredBody:
        """The body named `sha256`, if stored with `size` bytes (None: its stored size, for a
        body known by its digest alone); BodyNotFound (no bucket, no such body) or
        BodySizeMismatch otherwise. Nothing of the body is read yet."""
        if self._store is None:
            try:
                self._store = await open_body_store(self._js, self._bucket)
            except (BucketNotFoundError, NotFoundError):
                raise BodyNotFound("no document body has been stored yet") from None
        if size is None:
            info = await stored_info(self._store, sha256)
        else:
            info = await checked_info(self._store, sha256, size)
        return StoredBody(
            sha256=sha256,
            size=info.size or 0,
            # how nats.js.object_store names a body's chunks and its stream
            chunks_subject=f"$O.{self._bucket}.C.{info.nuid}",
            stream=f"OBJ_{self._bucket}",
            js=self._js,
        )
