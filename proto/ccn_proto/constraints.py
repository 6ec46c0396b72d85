"""Bounds shared by every message: each untrusted string has a maximum size."""

from typing import Annotated

import msgspec

ShortText = Annotated[str, msgspec.Meta(max_length=128)]
Text = Annotated[str, msgspec.Meta(max_length=1000)]
UserAgent = Annotated[str, msgspec.Meta(max_length=512)]
Sha256Hex = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
Version = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern="^[A-Za-z0-9._-]+$")]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
