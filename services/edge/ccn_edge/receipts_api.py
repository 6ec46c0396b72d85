"""GET /receipts/keys: the public keys that sign receipts, for anyone to check a receipt offline
(`ccn receipts verify FILE --edge URL`). Public and cacheable: public keys are no secret, and
a retired key stays listed so the receipts it signed still verify.

The set is the key ring's own `keys.json` (ccn_core.receipts), read from the directory the
settings name and re-read only when the file changes; the edge never sees a private key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from litestar import Response, get

from ccn_core.errors import Unavailable
from ccn_core.receipts import KEYS_FILE, KeyRingError, load_key_set
from ccn_proto.receipts import KeySet

# a rotation shows within this long at a verifier that cached the set (a retired key's receipts
# verify meanwhile anyway: the key stays listed)
CACHE_MAX_AGE_S = 300


class PublishedKeys:
    """The key set in `directory`, cached until its file changes."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._seen: tuple[int, int, int] | None = None
        self._keys: KeySet | None = None

    def current(self) -> KeySet:
        """The published set; an empty one when no ring was made yet (nothing was signed, so
        nothing verifies: the truth, not a fault); Unavailable (503) when its file is damaged."""
        try:
            info = os.stat(self._directory / KEYS_FILE)
        except FileNotFoundError:
            return KeySet(keys=[])
        except OSError:
            raise Unavailable("the receipt keys cannot be read now", retry_after=60.0) from None
        seen = (info.st_ino, info.st_mtime_ns, info.st_size)
        if self._keys is None or seen != self._seen:
            try:
                self._keys = load_key_set(self._directory)
            except (KeyRingError, OSError):
                raise Unavailable("the receipt keys cannot be read now", retry_after=60.0) from None
            self._seen = seen
        return self._keys


def receipt_keys_handler(keys: PublishedKeys) -> Any:
    @get(
        "/receipts/keys",
        summary="The receipt signing keys",
        description="Every key that signed receipts: the active one and the retired ones, each with its validity. "
        "A receipt verifies against the key its `key_id` names when it was issued within that key's validity. "
        "Public; cache it.",
        tags=["receipts"],
    )
    async def receipt_keys() -> Response[KeySet]:
        return Response(keys.current(), headers={"Cache-Control": f"public, max-age={CACHE_MAX_AGE_S}"})

    return receipt_keys
