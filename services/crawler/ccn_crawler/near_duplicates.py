"""Near-duplicate pages across sites, by MinHash over word shingles (datasketch).

Each changed page's text gets a MinHash signature; an LSH index of every signature seen finds
pages whose estimated Jaccard similarity is at least the threshold. The index lives in the
crawler's memory and is rebuilt from the signatures the campaign events carry, so it needs no
store of its own. A signature is the MinHash's 64 hash values as 32-bit big-endian hex (datasketch
keeps them below 2**32).

datasketch is imported where it is first used, not with this module: its LSH imports
scipy.integrate, two seconds of every crawler start and of every test run's collection."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

import numpy as np

if TYPE_CHECKING:
    from datasketch import MinHash  # type: ignore[import-untyped]

from ccn_core.domain.campaign import NearDuplicate

NUM_PERM: Final = 64
# datasketch 2's default, named so a signature stored today is read the same way by a later release
SCHEME: Final = "affine32"
THRESHOLD: Final = 0.9
# LSH finds candidates with a lower threshold, so pages just above THRESHOLD are rarely missed;
# the estimated similarity of each candidate then decides
CANDIDATE_THRESHOLD: Final = 0.6
SHINGLE_WORDS: Final = 5
# text beyond this is not shingled: a page's first 200,000 characters say what it is
MAX_TEXT_CHARS: Final = 200_000
_WORD = re.compile(r"\w+")


def signature_of(text: str) -> MinHash | None:
    words = _WORD.findall(text[:MAX_TEXT_CHARS].lower())
    if len(words) < SHINGLE_WORDS:
        return None
    from datasketch import MinHash

    minhash = MinHash(num_perm=NUM_PERM, scheme=SCHEME)
    minhash.update_batch(
        [" ".join(words[i : i + SHINGLE_WORDS]).encode() for i in range(len(words) - SHINGLE_WORDS + 1)]
    )
    return minhash


def to_hex(minhash: MinHash) -> str:
    return str(minhash.hashvalues.astype(">u4").tobytes().hex())


def from_hex(text: str) -> MinHash | None:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return None
    if len(raw) != NUM_PERM * 4:
        return None
    values = np.frombuffer(raw, dtype=">u4").astype(np.uint64)
    from datasketch import LeanMinHash

    return LeanMinHash(seed=1, hashvalues=values, scheme=SCHEME)


class NearDuplicateIndex:
    def __init__(self, threshold: float = THRESHOLD) -> None:
        from datasketch import MinHashLSH

        self._threshold = threshold
        self._lsh = MinHashLSH(threshold=CANDIDATE_THRESHOLD, num_perm=NUM_PERM)
        self._signatures: dict[str, MinHash] = {}

    def __len__(self) -> int:
        return len(self._signatures)

    def nearest(self, url: str, minhash: MinHash) -> NearDuplicate | None:
        """The most similar page already indexed (not `url` itself), if one is near enough."""
        best: NearDuplicate | None = None
        for other in self._lsh.query(minhash):
            if other == url:
                continue
            similarity = round(float(minhash.jaccard(self._signatures[other])), 4)
            if similarity < self._threshold:
                continue
            if best is None or similarity > best.similarity or (similarity == best.similarity and other < best.url):
                best = NearDuplicate(url=other, similarity=similarity)
        return best

    def add(self, url: str, minhash: MinHash) -> None:
        if url in self._signatures:
            self._lsh.remove(url)
        self._signatures[url] = minhash
        self._lsh.insert(url, minhash)
