"""How a crawl job type fetches, as pure functions the node and the fetch proxy share.

A crawl job's handler stays pure: it never fetches. The node runs a loop around it:
1. `next_urls(payload, pages)` says which URLs to fetch next, given the pages fetched so far
   (none at first); the node asks the edge for each (`FetchPage`, answered with a FetchOutcome)
   and reads each body through the edge, checked against its reference;
2. repeated until `next_urls` returns nothing or `max_fetches(payload)` fetches were made;
3. `with_pages(payload, pages)` is the payload with the pages in place, and the handler runs on
   it. A sample payload for the determinism test carries its pages already.

A recrawl is a conditional GET: `validators(payload, url)` gives the ETag and Last-Modified the
payload holds for a URL (from its last crawl), and the fetch proxy sends them; the node has no say
in them. The default is none.

The fetch proxy calls `in_scope(payload, url)` to refuse a URL that is not the job's (stage
`job`): a crawl job may ask only for what its payload allows (its URL, or its domain and
patterns for a multi-hop crawl). `next_urls` must only return URLs `in_scope` accepts, and must
never return one it returned before, so the loop ends (a test per job type holds it to that).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec

from ccn_proto.documents import InlineDocument
from ccn_proto.fetch import FetchOutcome

P = TypeVar("P", bound=msgspec.Struct)

# the most fetches any crawl job makes, whatever its payload asks
MAX_FETCHES_PER_JOB = 200


class CrawledPage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One fetch as the handler sees it: what the proxy answered, and the body's bytes when it
    gave one (the node reads them through the edge and checks them against the reference)."""

    url: str
    outcome: FetchOutcome
    document: InlineDocument | None = None


@dataclass(frozen=True, slots=True)
class CrawlSpec(Generic[P]):
    in_scope: Callable[[P, str], bool]
    next_urls: Callable[[P, Sequence[CrawledPage]], list[str]]
    with_pages: Callable[[P, list[CrawledPage]], P]
    max_fetches: Callable[[P], int]
    validators: Callable[[P, str], tuple[str | None, str | None]] = lambda payload, url: (None, None)
