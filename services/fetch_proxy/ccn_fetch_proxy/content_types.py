"""Which responses the proxy keeps a body of: the media types a document job reads
(ccn_proto.documents.MediaType), named by the response's Content-Type."""

from __future__ import annotations

import re
from typing import get_args

import msgspec

from ccn_proto.documents import MediaType

ALLOWED_MEDIA_TYPES: frozenset[str] = frozenset(get_args(MediaType))
# XHTML is HTML to every reader the jobs have
_ALIASES = {"application/xhtml+xml": "text/html"}
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([A-Za-z0-9._:-]{1,40})\"?", re.IGNORECASE)


class BodyType(msgspec.Struct, frozen=True):
    media_type: MediaType
    charset: str | None = None


def body_type(content_type: str | None) -> BodyType | None:
    """The allowed media type the header names (and its charset), or None: absent, malformed
    or not one the jobs read."""
    if not content_type:
        return None
    essence = content_type[:256].split(";", 1)[0].strip().lower()
    essence = _ALIASES.get(essence, essence)
    if essence not in ALLOWED_MEDIA_TYPES:
        return None
    found = _CHARSET.search(content_type[:256])
    charset = found.group(1).lower() if found else None
    return BodyType(essence, charset)  # type: ignore[arg-type]  # checked against ALLOWED_MEDIA_TYPES above
