"""Bytes to text for HTML and plain-text documents, whatever they were declared as.

In order: a byte-order mark wins; then strict UTF-8 (valid UTF-8 is almost never an accident,
so it beats a declared charset, which is often wrong); then the declared charset, if Python
knows it, it decodes the bytes strictly and charset-normalizer finds it plausible; then
charset-normalizer's best guess; and if all fail, UTF-8 with replacement characters. Every
step is a pure function of the bytes and the declaration, so every node decodes alike.
charset-normalizer reads a bounded sample."""

from __future__ import annotations

import codecs

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# charset-normalizer's own sampling bounds its work; this bounds the bytes handed to it.
_DETECTION_SAMPLE_BYTES = 256 * 1024
# How much more "mess" (charset-normalizer's chaos ratio) than the best a codec may make and
# still count as plausible.
_CHAOS_TOLERANCE = 0.02


def decode_text(data: bytes, declared: str | None) -> tuple[str, str]:
    """(text, the codec that produced it)."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data.decode(codec, "replace"), codec
    # NUL bytes are valid UTF-8 but mean UTF-16 or UTF-32 without a mark, or binary.
    if b"\x00" not in data:
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    known = _known_codec(declared) if declared else None
    plausible = _plausible_codecs(data)
    if known is not None and (known in plausible or not plausible):
        try:
            return data.decode(known), known
        except UnicodeDecodeError:
            pass
    if plausible:
        return data.decode(plausible[0], "replace"), plausible[0]
    return data.decode("utf-8", "replace"), "utf-8"


def _known_codec(name: str) -> str | None:
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    # Only text encodings: "base64", "zlib" and the like are codecs too.
    return info.name if getattr(info, "_is_text_encoding", True) else None


def _plausible_codecs(data: bytes) -> list[str]:
    """Codecs that charset-normalizer finds plausible for the bytes, its best first. A declared
    charset is believed only if it is among them: many single-byte text decodes "strictly" as
    Shift JIS or Big5, into nonsense."""
    from charset_normalizer import from_bytes

    codecs_found: list[str] = []
    matches = list(from_bytes(data[:_DETECTION_SAMPLE_BYTES]))
    for index, match in enumerate(matches):
        if index > 0 and match.chaos > matches[0].chaos + _CHAOS_TOLERANCE:
            break  # matches come best first; these read as noise
        for name in (match.encoding, *match.could_be_from_charset):
            codec = _known_codec(name)
            if codec is not None and codec not in codecs_found:
                codecs_found.append(codec)
    return codecs_found
