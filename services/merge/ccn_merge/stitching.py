"""Which canonical record a proposed record belongs to, across sources (CC-44).

The evidence is weighed in this order, and the first that decides, decides:
  1. record key   the proposal names its record (`record_id`): that record, nothing else.
  2. EIN          (funders) the same EIN joins unless the names have nothing in common; two
                  different EINs never join, whatever else agrees.
  3. name, website and place  (funders) the organisation matcher of job type link_entities
                  (ccn_jobs.link_entities: fuzzy names without legal forms, acronyms, kinds of
                  body, the website's registered domain, country, state and town) is run on
                  the proposal and one candidate record at a time (records the dataset keeps
                  apart are never chained through each other); candidates are the records that
                  share an EIN, a domain, an acronym or a rare name word with it (at most
                  MAX_CANDIDATES); a different country or state never joins. (opportunities)
                  the same page URL, or a title alike (the same name similarity) with the same
                  funder; a different funder or country never joins.
  4. category     a join whose categories are disjoint (both given) is not trusted: review.
  5. ambiguity    a proposal that would join two or more records, or lands between the
                  matcher's review and match thresholds, joins none: it goes to review with the
                  records it could be (`candidates`), and the reviewer decides.
  6. otherwise    a new record.
The same reasoning is in docs/datasets.md. Deterministic: candidates are taken in record-id
order and link_entities is deterministic by construction.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from ccn_core.errors import BadInput
from ccn_jobs.link_entities import (
    DEFAULT_MATCH_THRESHOLD,
    DEFAULT_REVIEW_THRESHOLD,
    LinkEntitiesPayload,
    OrganisationRecord,
    link_entities,
    name_similarity,
    registered_domain,
)
from ccn_jobs.org_names import STOP_WORDS
from ccn_jobs.places import COUNTRIES
from ccn_merge.merge_rules import RecordState
from ccn_merge.schema import org_name, url_key
from ccn_proto.datasets import FieldValue, RecordKind

# records scored against one proposal at most; blocking keys past this many records are too
# common to tell records apart ("community", "arts") and are not used to find candidates
MAX_CANDIDATES = 40
MAX_POSTING = 5000
NAME_WORDS_LOOKED_UP = 3
ALIASES_SCORED = 5
PROPOSAL_ID = "proposal#new"  # '#' is no record id's character: it cannot collide

Outcome = Literal["record_key", "matched", "new", "ambiguous"]


class Stitch(msgspec.Struct, frozen=True, kw_only=True):
    outcome: Outcome
    record_id: str | None  # the record joined (record_key, matched); None when new or ambiguous
    candidates: tuple[str, ...] = ()  # ambiguous: the records it could be
    reason: str


def new_record_id(kind: RecordKind, proposal_key: str, index: int) -> str:
    """A new record's id, from the proposal that made it: replay makes the same id."""
    digest = hashlib.sha256(f"{kind}\n{proposal_key}\n{index}".encode()).hexdigest()[:24]
    return f"{'fun' if kind == 'funder' else 'opp'}-{digest}"


def _text(values: Mapping[str, FieldValue | None], name: str) -> str | None:
    value = values.get(name)
    return value if isinstance(value, str) else None


def _list(values: Mapping[str, FieldValue | None], name: str) -> list[str]:
    value = values.get(name)
    return value if isinstance(value, list) else []


@functools.lru_cache(maxsize=1 << 14)
def _domain(website: str) -> str | None:
    return registered_domain(website)


def _name_words(name: str) -> set[str]:
    org = org_name(name)
    keys = {f"w:{word}" for word in org.core.split() if word not in STOP_WORDS}
    if " " not in org.core and len(org.core) >= 3:
        keys.add(f"acr:{org.core}")  # an acronym meets the names it abbreviates
    for acronym in (org.acronym, org.full_acronym):
        if len(acronym) >= 3:
            keys.add(f"acr:{acronym}")
    return keys


# the fields blocking keys are read from: a change of another field leaves the index as it is
STITCH_FIELDS: dict[RecordKind, frozenset[str]] = {
    "funder": frozenset({"ein", "website", "name", "aliases"}),
    "opportunity": frozenset({"url", "funder_id", "title"}),
}


def blocking_keys(kind: RecordKind, values: Mapping[str, FieldValue | None]) -> set[str]:
    """The keys a record is found by: strong ones (EIN, domain, URL, funder) and name words."""
    keys: set[str] = set()
    if kind == "funder":
        if ein := _text(values, "ein"):
            keys.add(f"ein:{ein}")
        if (website := _text(values, "website")) and (domain := _domain(website)):
            keys.add(f"dom:{domain}")
        for name in [n for n in [_text(values, "name")] if n] + _list(values, "aliases")[:ALIASES_SCORED]:
            keys |= _name_words(name)
    else:
        if url := _text(values, "url"):
            with contextlib.suppress(BadInput):
                keys.add(f"url:{url_key(url)}")
        if funder := _text(values, "funder_id"):
            keys.add(f"fid:{funder}")
        if title := _text(values, "title"):
            keys |= {key for key in _name_words(title) if key.startswith("w:")}
    return keys


@dataclass(slots=True)
class StitchIndex:
    """Blocking keys to record ids, per kind; kept up to date by the dataset's fold."""

    postings: dict[str, set[str]] = field(default_factory=dict)
    keys_of: dict[str, frozenset[str]] = field(default_factory=dict)

    def update(self, record: RecordState) -> None:
        new = frozenset(f"{record.kind}|{key}" for key in blocking_keys(record.kind, record.values()))
        old = self.keys_of.get(record.record_id, frozenset())
        for key in old - new:
            posting = self.postings.get(key)
            if posting is not None:
                posting.discard(record.record_id)
                if not posting:
                    del self.postings[key]
        for key in new - old:
            self.postings.setdefault(key, set()).add(record.record_id)
        self.keys_of[record.record_id] = new

    def candidates(self, kind: RecordKind, values: Mapping[str, FieldValue | None]) -> list[str]:
        strong: set[str] = set()
        words: list[tuple[int, str]] = []
        for key in blocking_keys(kind, values):
            posting = self.postings.get(f"{kind}|{key}", set())
            if not posting or len(posting) > MAX_POSTING:
                continue
            if key.startswith(("w:", "acr:")):
                words.append((len(posting), key))
            else:
                strong |= posting
        found = sorted(strong)[:MAX_CANDIDATES]
        shared: dict[str, int] = {}
        for _, key in sorted(words)[:NAME_WORDS_LOOKED_UP]:
            for record_id in self.postings[f"{kind}|{key}"]:
                shared[record_id] = shared.get(record_id, 0) + 1
        for record_id, _ in sorted(shared.items(), key=lambda item: (-item[1], item[0])):
            if len(found) >= MAX_CANDIDATES:
                break
            if record_id not in strong:
                found.append(record_id)
        return sorted(found)


def stitch(
    kind: RecordKind,
    record_id: str | None,
    values: Mapping[str, FieldValue | None],
    records: Mapping[str, RecordState],
    index: StitchIndex,
) -> Stitch:
    """Where the proposed record belongs (the priority order is the module's docstring)."""
    if record_id is not None:
        existing = records.get(record_id)
        if existing is not None and existing.kind != kind:
            raise BadInput(f"record {record_id} is a {existing.kind}, not a {kind}", field="record_id")
        return Stitch(outcome="record_key", record_id=record_id, reason="record key")
    candidates = [rid for rid in index.candidates(kind, values) if rid in records]
    if not candidates:
        return Stitch(outcome="new", record_id=None, reason="new: no record shares a key with it")
    if kind == "funder":
        found = _funder_matches(values, [records[rid] for rid in candidates])
    else:
        found = _opportunity_matches(values, [records[rid] for rid in candidates])
    joined, doubtful, why = found
    if len(joined) == 1 and not doubtful - joined:
        (match,) = joined
        ours, theirs = set(_list(values, "categories")), set(_list(records[match].values(), "categories"))
        if ours and theirs and not {c.casefold() for c in ours} & {c.casefold() for c in theirs}:
            return Stitch(
                outcome="ambiguous",
                record_id=None,
                candidates=(match,),
                reason=f"{why}, but the categories do not align "
                f"({', '.join(sorted(ours))} vs {', '.join(sorted(theirs))})",
            )
        return Stitch(outcome="matched", record_id=match, reason=why)
    if joined or doubtful:
        together = tuple(sorted(joined | doubtful))
        return Stitch(
            outcome="ambiguous",
            record_id=None,
            candidates=together,
            reason=f"ambiguous: it could be any of {len(together)} records ({why})",
        )
    return Stitch(outcome="new", record_id=None, reason=f"new: {why}")


def _location_text(values: Mapping[str, FieldValue | None]) -> str | None:
    country = _text(values, "country")
    parts = [_text(values, "city"), _text(values, "region"), COUNTRIES.get(country, (country,))[0] if country else None]
    text = ", ".join(part for part in parts if part)
    return text[:300] or None


def _organisation(record_id: str, name: str, values: Mapping[str, FieldValue | None]) -> OrganisationRecord:
    return OrganisationRecord(
        record_id=record_id,
        source="dataset",
        name=name[:300],
        ein=_text(values, "ein"),
        website=_text(values, "website"),
        location=_location_text(values),
    )


def _funder_matches(
    values: Mapping[str, FieldValue | None], existing: list[RecordState]
) -> tuple[set[str], set[str], str]:
    """The records the proposal joins, and those it is in doubt with, by link_entities run on
    the proposal and one record at a time: records the dataset keeps apart are never chained
    through each other."""
    name = _text(values, "name") or next(iter(_list(values, "aliases")), None)
    ein = _text(values, "ein")
    if name is None:
        # nothing for the name matcher: an EIN alone decides, and only when one record has it
        same = {r.record_id for r in existing if ein is not None and r.value("ein") == ein}
        return (same, set(), f"same EIN {ein}") if len(same) == 1 else (set(), same, f"EIN {ein} on several records")
    proposal = _organisation(PROPOSAL_ID, name, values)
    joined: set[str] = set()
    doubtful: dict[str, float] = {}
    best = 0.0
    for record in existing:
        record_values = record.values()
        names = [n for n in [_text(record_values, "name")] if n] + _list(record_values, "aliases")[:ALIASES_SCORED]
        # each alias stands with the record's identifiers and place: a name of the same body
        organisations = [
            _organisation(f"{record.record_id}#{position}", known, record_values)
            for position, known in enumerate(names or [record.record_id])
        ]
        result = link_entities(
            LinkEntitiesPayload(
                records=(proposal, *organisations),
                match_threshold=DEFAULT_MATCH_THRESHOLD,
                review_threshold=DEFAULT_REVIEW_THRESHOLD,
            )
        )
        ours = result.links[0]
        if any(link.canonical_entity_id == ours.canonical_entity_id for link in result.links[1:]):
            joined.add(record.record_id)
            best = max(best, ours.confidence)
            continue
        scores = [pair.score for pair in result.review if PROPOSAL_ID in (pair.record_a, pair.record_b)]
        if scores:
            doubtful[record.record_id] = max(scores)
    # a pair in review beside a clear join makes the match doubtful only when it scored as a
    # join would and was refused because the two contradict each other; a weaker likeness does not
    in_doubt = {rid for rid, score in doubtful.items() if not joined or score >= DEFAULT_MATCH_THRESHOLD}
    evidence = "same EIN " + ein if ein and any(r.value("ein") == ein for r in existing) else "name, website, place"
    return joined, in_doubt, f"link_entities ({evidence}): confidence {best:.2f}"


def _opportunity_matches(
    values: Mapping[str, FieldValue | None], existing: list[RecordState]
) -> tuple[set[str], set[str], str]:
    title, url = _text(values, "title"), _text(values, "url")
    funder, funder_name = _text(values, "funder_id"), _text(values, "funder_name")
    country = _text(values, "country")
    joined: set[str] = set()
    doubtful: set[str] = set()
    for record in existing:
        theirs = record.values()
        if funder and (other := _text(theirs, "funder_id")) and other != funder:
            continue  # another funder's opportunity: never the same
        if country and (other := _text(theirs, "country")) and other != country:
            continue
        similarity = 0.0
        if title and (their_title := _text(theirs, "title")):
            similarity, _ = name_similarity(org_name(title), org_name(their_title))
        same_url = _same_url(url, _text(theirs, "url"))
        same_funder = bool(funder and funder == _text(theirs, "funder_id")) or bool(
            funder_name
            and (their_funder := _text(theirs, "funder_name"))
            and org_name(funder_name).full == org_name(their_funder).full
        )
        if (same_url and similarity >= DEFAULT_REVIEW_THRESHOLD) or (
            same_funder and similarity >= DEFAULT_MATCH_THRESHOLD
        ):
            joined.add(record.record_id)
        elif same_url or similarity >= DEFAULT_REVIEW_THRESHOLD:
            doubtful.add(record.record_id)
    return joined, doubtful, "same page or a like title from the same funder"


def _same_url(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    try:
        return url_key(a) == url_key(b)
    except BadInput:
        return False
