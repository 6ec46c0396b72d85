"""Content-Encoding decoded by the proxy, with bounds: a compressed body is inflated in
pieces, each call bounded in what it may produce, so a decompression bomb costs at most the
output bound in memory and is cut as soon as it passes it.

Two bounds, both checked while streaming: the decoded size (`max_bytes`) and the ratio of
decoded to received bytes (`max_ratio`, once past `RATIO_GRACE_BYTES`, since a small page of
repetitive HTML compresses well and must not be mistaken for a bomb). `gzip`, `x-gzip` and
`deflate` (zlib-wrapped or raw, as servers send both) are decoded; `identity` passes through;
anything else, or a chain of codings, is refused."""

from __future__ import annotations

import zlib

RATIO_GRACE_BYTES = 1024 * 1024
DEFAULT_MAX_RATIO = 100


class BoundExceeded(Exception):
    """The body passed a bound. `partial`: what the call that passed it decoded within the
    bound, for a reader that keeps a body's first bytes instead of failing (robots.txt)."""

    def __init__(self, message: str, partial: bytes = b"") -> None:
        super().__init__(message)
        self.partial = partial


class DecompressionBomb(BoundExceeded):
    """The decoded body outgrew its bound or its ratio."""


class BodyTooLarge(BoundExceeded):
    """An uncompressed body over its bound, or more compressed bytes than the bound."""


class UnsupportedEncoding(Exception):
    """A Content-Encoding the proxy does not decode."""


class BodyDecoder:
    def __init__(self, content_encoding: str | None, *, max_bytes: int, max_ratio: float = DEFAULT_MAX_RATIO) -> None:
        coding = (content_encoding or "identity").strip().lower()
        if coding in ("gzip", "x-gzip"):
            self._inflater: zlib._Decompress | None = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            self._inflater = None  # zlib-wrapped or raw: known from the first bytes
        elif coding in ("identity", ""):
            self._inflater = None
        else:
            raise UnsupportedEncoding(f"Content-Encoding {coding[:40]!r} is not decoded here")
        self._coding = coding
        self._max_bytes = max_bytes
        self._max_ratio = max_ratio
        self._head = b""
        self.received = 0
        self.produced = 0

    @property
    def compressed(self) -> bool:
        return self._coding not in ("identity", "")

    def feed(self, chunk: bytes) -> bytes:
        self.received += len(chunk)
        if not self.compressed:
            return self._counted(chunk)
        if self._inflater is None:
            # RFC 9110 says deflate is zlib-wrapped; some servers send it raw: the header tells
            self._head += chunk
            if len(self._head) < 2:
                return b""
            chunk, self._head = self._head, b""
            wrapped = chunk[0] & 0x0F == 8 and (chunk[0] << 8 | chunk[1]) % 31 == 0
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        return self._inflate(chunk)

    def finish(self) -> bytes:
        """What the decoder still holds, at the end of the body."""
        if not self.compressed:
            return b""
        if self._inflater is None:
            if self._head:
                raise ValueError(f"the {self._coding} body is corrupt: it ends after one byte")
            return b""
        try:
            return self._counted(self._inflater.flush())
        except zlib.error as error:
            raise ValueError(f"the {self._coding} body is corrupt: {error}") from None

    def _inflate(self, data: bytes) -> bytes:
        assert self._inflater is not None
        out = bytearray()
        while True:
            try:
                piece = self._inflater.decompress(data, self._room())
            except zlib.error as error:
                raise ValueError(f"the {self._coding} body is corrupt: {error}") from None
            # a piece as long as the room left is past the bound: _counted raises
            try:
                out += self._counted(piece)
            except BoundExceeded as exceeded:
                exceeded.partial = bytes(out) + exceeded.partial
                raise
            data = self._inflater.unconsumed_tail
            if not data:
                return bytes(out)

    def _room(self) -> int:
        """What the next inflate may produce: one byte past the nearer bound (size or ratio),
        so passing it is seen and no call ever holds more than that."""
        ratio_bound = max(RATIO_GRACE_BYTES, int(self._max_ratio * self.received))
        return max(1, min(self._max_bytes, ratio_bound) - self.produced + 1)

    def _counted(self, piece: bytes) -> bytes:
        before = self.produced
        self.produced += len(piece)
        if self.produced > self._max_bytes:
            within = piece[: self._max_bytes - before]
            if self.compressed:
                raise DecompressionBomb(f"the decoded body is over {self._max_bytes} bytes", within)
            raise BodyTooLarge(f"the body is over {self._max_bytes} bytes", within)
        if self.compressed and self.produced > RATIO_GRACE_BYTES and self.produced > self._max_ratio * self.received:
            raise DecompressionBomb(
                f"{self.received} compressed bytes decoded to {self.produced}: over the ratio {self._max_ratio:g}",
                piece[: max(0, int(self._max_ratio * self.received) - before)],
            )
        return piece
