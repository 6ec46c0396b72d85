"""Fair scheduling: no node takes more than twice its fair share of a sliding window's claims
while other nodes ask for work too.

The window (10 s by default) is kept as a ring of buckets (1 s each). In it: how many jobs each
node took and how many were taken in all; and which nodes are asking (asked in the last 3 s),
each with its weight (0 to 1: reputation and health, ccn_scheduler.node_view.scheduling_weight).
A node's fair share is the window's total split by weight among the nodes asking (its weight over
the sum of theirs); its cap is `ratio` (2) times that, and never below the node's concurrency, so
every node that asks is served and a quiet window starts without a ramp. A node at its cap gets
nothing now; its claim waits like one that found no work, and others' claims (which wake it) or
the next bucket raise the cap again.

Weights are relative: a node of weight 0.5 among nodes of weight 1 gets half their share, and a
fleet whose nodes all weigh 0.5 (all new to a job type, all unstable) shares its work as a fleet
of weight 1 would. Scaled by its absolute weight instead, each node of such a fleet would be
capped at the window's average, and the fleet held to its floors: a tenth of its speed or less.

A node alone is not held back: with one asker there is nobody to be fair to. Each call costs a
few dictionary operations; a bucket's expiry costs one pass over the nodes that acted in it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

WINDOW_S: Final = 10.0
BUCKETS: Final = 10
FAIR_RATIO: Final = 2.0
# a node counts among those asking while it asked within this many of the last buckets: a node
# waiting for work asks again every quarter second, one working asks after each job; one that
# left (or works on one long job) stops diluting the others' share after this
ASKING_BUCKETS: Final = 3
UNCAPPED: Final = 1 << 30
# weights are summed in thousandths, as integers: a running sum of floats would drift
_WEIGHT_UNITS: Final = 1000


@dataclass(slots=True)
class _Bucket:
    index: int
    taken: dict[str, int] = field(default_factory=dict)


class FairShare:
    def __init__(
        self,
        *,
        window_s: float = WINDOW_S,
        buckets: int = BUCKETS,
        ratio: float = FAIR_RATIO,
        asking_buckets: int = ASKING_BUCKETS,
    ) -> None:
        self._bucket_s = window_s / buckets
        self._buckets_kept = buckets
        self._asking_buckets = min(asking_buckets, buckets)
        self._ratio = ratio
        self._ring: deque[_Bucket] = deque()
        self._taken: dict[str, int] = {}  # node → jobs taken in the window
        self._total = 0
        self._last_ask: dict[str, int] = {}  # node → the bucket of its latest ask, while it counts
        self._askers: dict[int, set[str]] = {}  # bucket → nodes whose latest ask is in it
        self._weight: dict[str, int] = {}  # asking node → its weight at its latest ask, in units
        self._weights = 0  # the sum of the asking nodes' weights, in units

    def _advance(self, now: datetime) -> int:
        index = int(now.timestamp() // self._bucket_s)
        oldest_kept = index - self._buckets_kept + 1
        while self._ring and self._ring[0].index < oldest_kept:
            expired = self._ring.popleft()
            for node_id, count in expired.taken.items():
                left = self._taken[node_id] - count
                if left:
                    self._taken[node_id] = left
                else:
                    del self._taken[node_id]
                self._total -= count
        oldest_asking = index - self._asking_buckets + 1
        for bucket in [b for b in self._askers if b < oldest_asking]:
            for node_id in self._askers.pop(bucket):
                if self._last_ask.get(node_id) == bucket:
                    del self._last_ask[node_id]
                    self._weights -= self._weight.pop(node_id)
        if not self._ring or self._ring[-1].index != index:
            self._ring.append(_Bucket(index))
        return index

    def asked(self, node_id: str, now: datetime, weight: float = 1.0) -> None:
        """The node asks for work: it counts among those the window's claims are shared by, with
        `weight` (0 to 1) until it asks again."""
        index = self._advance(now)
        units = round(min(1.0, max(0.0, weight)) * _WEIGHT_UNITS)
        self._weights += units - self._weight.get(node_id, 0)
        self._weight[node_id] = units
        previous = self._last_ask.get(node_id)
        if previous == index:
            return
        if previous is not None:
            self._askers[previous].discard(node_id)
        self._last_ask[node_id] = index
        self._askers.setdefault(index, set()).add(node_id)

    def allowance(self, node_id: str, now: datetime, *, floor: int = 1) -> int:
        """How many more jobs the node may take now (call `asked` first). `floor`: the cap is
        never below it (the node's concurrency: a node can always fill its slots once a window)."""
        self._advance(now)
        if len(self._last_ask) <= 1:
            return UNCAPPED  # nobody else asks: nobody to be fair to
        weights = self._weights
        share = self._total * self._weight.get(node_id, 0) / weights if weights else 0.0
        cap = max(floor, int(self._ratio * share))
        return max(0, cap - self._taken.get(node_id, 0))

    def took(self, node_id: str, count: int, now: datetime) -> None:
        if count <= 0:
            return
        self._advance(now)
        bucket = self._ring[-1]
        bucket.taken[node_id] = bucket.taken.get(node_id, 0) + count
        self._taken[node_id] = self._taken.get(node_id, 0) + count
        self._total += count

    def share(self, node_id: str) -> tuple[int, int, int]:
        """(the node's jobs in the window, all jobs in the window, nodes asking): for tests and logs."""
        return self._taken.get(node_id, 0), self._total, len(self._last_ask)
