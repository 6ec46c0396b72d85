"""Job type `link_entities` (CC-73): which organisation records, from several sources, are one
organisation, with a canonical id per organisation and the doubtful pairs set aside for review.

Each pair of records that could be one (similar names, the same EIN, or the same website
domain) gets a score in [0, 1] from its evidence:
  name      the similarity of the names without legal forms ("Inc.", "gGmbH") or a leading
            "The" (rapidfuzz token-sort ratio and Jaro-Winkler), raised by an acronym that
            spells the other name, capped when the two names are different kinds of body
            (the Nuffield Foundation is not the Nuffield Trust);
  EIN       the same US Employer Identification Number makes the pair a match unless the names
            have nothing in common; two different EINs veto the pair outright;
  website   the same registered domain (tldextract's bundled Public Suffix List, private
            suffixes included, so two blogspot.com sites are two domains) adds, two different
            domains subtract; hosts many organisations share (social networks, europa.eu) count
            for nothing;
  location  a different country or state subtracts, and so, less, does a different town; the
            same town adds a little;
  corroboration  a name of one significant word ("Knight Foundation") is shared by many
            bodies, so on its own, with no EIN, domain or town in common, it reaches review at
            most.
Pairs at or above `match_threshold` are joined, strongest first, into clusters. A join is
refused, and the pair sent to review, when any record of one cluster contradicts any record of
the other (two EINs, two countries, two states): "Comic Relief" (no place given) must not chain
"Comic Relief Ltd" (London) to "Comic Relief Inc" (Los Angeles). Pairs between
`review_threshold` and `match_threshold` that end in different clusters go to `review`.

Determinism: the result depends on the payload alone. Every score is rounded to 4 digits before
it is compared or reported, joins happen in (score, ids) order, and `canonical_entity_id` is a
hash of the cluster's sorted record ids (it changes when the cluster's members change).

Bounds: at most MAX_RECORDS records, each field bounded; candidate pairs are found with
rapidfuzz's C search, so the Python work grows with the pairs worth scoring, and the review list
is cut at MAX_REVIEW_PAIRS (with `review_truncated` set)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import msgspec

from ccn_jobs.job_type import JobType
from ccn_jobs.org_names import STOP_WORDS, OrgName, normalise
from ccn_jobs.places import Location, parse_location
from ccn_jobs.result_rules import Allowed, Bounds, Format, Mandatory, ResultRules, Size
from ccn_proto.constraints import END, SINGLE_LINE_PATTERN

if TYPE_CHECKING:
    from tldextract import TLDExtract

NAME = "link_entities"
VERSION = "1"

MAX_RECORDS = 1000
MAX_REVIEW_PAIRS = 1000
DEFAULT_MATCH_THRESHOLD = 0.9
DEFAULT_REVIEW_THRESHOLD = 0.7
CANDIDATE_NAME_CUTOFF = 50  # token-sort ratio below which names alone do not make a candidate pair
SCORE_DIGITS = 4

# the weights of the evidence, tuned on the `tune` split of tests/data/linking/organisations.jsonl
SAME_EIN_SCORE = 0.97
SAME_EIN_MIN_NAME = 0.4  # below it an EIN match is a rename or a typo: review, not a join
SAME_EIN_WEAK_NAME_SCORE = 0.8
SAME_DOMAIN_BONUS = 0.15
SAME_DOMAIN_LABEL_BONUS = 0.05
OTHER_DOMAIN_PENALTY = 0.15
OTHER_COUNTRY_PENALTY = 0.4
OTHER_STATE_PENALTY = 0.25
OTHER_TOWN_PENALTY = 0.1
SAME_CITY_BONUS = 0.05
UNCORROBORATED_ONE_WORD_CAP = 0.85
SAME_TOWN_MIN_RATIO = 90
DIFFERENT_KINDS_CAP = 0.8
ACRONYM_SCORE = 0.85
SUBSET_NAME_SCORE = 0.88
# the same website and one name inside the other ("Gates Foundation" at gatesfoundation.org)
SAME_DOMAIN_SHARED_WORD_SCORE = 0.92

# registered domains that many unrelated organisations share
SHARED_HOSTS = frozenset(
    {
        "facebook.com", "twitter.com", "x.com", "linkedin.com", "instagram.com", "youtube.com",
        "google.com", "medium.com", "wordpress.com", "wixsite.com", "squarespace.com", "eventbrite.com",
        "justgiving.com", "gofundme.com", "candid.org", "guidestar.org", "europa.eu", "nih.gov", "gov.uk",
    }
)  # fmt: skip

RecordId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=rf"^[A-Za-z0-9][A-Za-z0-9._:/@#-]*{END}")]
OrgNameText = Annotated[str, msgspec.Meta(min_length=1, max_length=300, pattern=SINGLE_LINE_PATTERN)]
SourceName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=SINGLE_LINE_PATTERN)]
Ein = Annotated[str, msgspec.Meta(pattern=rf"^[0-9]{{2}}-?[0-9]{{7}}{END}", description="US EIN, 12-3456789")]
Website = Annotated[str, msgspec.Meta(min_length=1, max_length=2048, pattern=rf"^\S+{END}")]
LocationText = Annotated[str, msgspec.Meta(max_length=300, pattern=SINGLE_LINE_PATTERN)]
Threshold = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Score = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Reason = Annotated[str, msgspec.Meta(max_length=200, pattern=SINGLE_LINE_PATTERN)]
EntityId = Annotated[str, msgspec.Meta(pattern=rf"^ent-[0-9a-f]{{24}}{END}")]


class OrganisationRecord(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    record_id: RecordId
    source: SourceName
    name: OrgNameText
    ein: Ein | None = None
    website: Website | None = None
    location: LocationText | None = None


class LinkEntitiesPayload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    records: Annotated[tuple[OrganisationRecord, ...], msgspec.Meta(min_length=1, max_length=MAX_RECORDS)]
    match_threshold: Threshold = DEFAULT_MATCH_THRESHOLD
    review_threshold: Threshold = DEFAULT_REVIEW_THRESHOLD

    def __post_init__(self) -> None:
        if self.review_threshold > self.match_threshold:
            raise ValueError("review_threshold cannot be above match_threshold")
        ids = [record.record_id for record in self.records]
        if len(set(ids)) != len(ids):
            raise ValueError("record_id values must be unique")


class EntityLink(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`confidence`: for a record joined to others, the score of its strongest join; for a record
    left alone, 1 minus the score of the pair that came nearest to joining it."""

    record_id: RecordId
    canonical_entity_id: EntityId
    confidence: Score


class ReviewPair(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    record_a: RecordId
    record_b: RecordId
    score: Score
    reasons: Annotated[tuple[Reason, ...], msgspec.Meta(max_length=16)]


class LinkEntitiesResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One link per input record, in input order; `entities` is the number of distinct ids."""

    version: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    links: Annotated[tuple[EntityLink, ...], msgspec.Meta(max_length=MAX_RECORDS)]
    review: Annotated[tuple[ReviewPair, ...], msgspec.Meta(max_length=MAX_REVIEW_PAIRS)]
    review_truncated: bool
    entities: Annotated[int, msgspec.Meta(ge=0, le=MAX_RECORDS)]


@dataclass(frozen=True, slots=True)
class _Prepared:
    record_id: str
    name: OrgName
    ein: str | None
    domain: str | None
    location: Location | None


@dataclass(frozen=True, slots=True)
class PairScore:
    score: float
    reasons: tuple[str, ...]


def link_entities(payload: LinkEntitiesPayload) -> LinkEntitiesResult:
    # worked in record-id order, so that nothing (pair orientation, ties between equal scores)
    # depends on the order the records came in; links are reported in input order
    prepared = [_prepare(record) for record in sorted(payload.records, key=lambda r: r.record_id)]
    scored = {pair: score_pair(prepared[pair[0]], prepared[pair[1]]) for pair in _candidate_pairs(prepared)}
    clusters = _Clusters(prepared, lambda a, b: _contradict(prepared[a], prepared[b]))
    review: list[tuple[int, int, PairScore, str | None]] = []
    joined_by: dict[int, float] = {}
    for (a, b), pair in sorted(scored.items(), key=lambda item: (-item[1].score, item[0])):
        if pair.score < payload.match_threshold:
            break
        if clusters.same(a, b) or clusters.join(a, b):
            joined_by[a] = max(joined_by.get(a, 0.0), pair.score)
            joined_by[b] = max(joined_by.get(b, 0.0), pair.score)
        else:
            review.append((a, b, pair, "joining would put contradicting records (EIN, country, state) in one cluster"))
    for (a, b), pair in sorted(scored.items()):
        if payload.review_threshold <= pair.score < payload.match_threshold and not clusters.same(a, b):
            review.append((a, b, pair, None))
    nearest: dict[int, float] = {}
    for (a, b), pair in scored.items():
        if not clusters.same(a, b):
            nearest[a] = max(nearest.get(a, 0.0), pair.score)
            nearest[b] = max(nearest.get(b, 0.0), pair.score)
    entity_ids = clusters.entity_ids()
    link_of = {
        record.record_id: EntityLink(
            record_id=record.record_id,
            canonical_entity_id=entity_ids[index],
            confidence=joined_by[index] if index in joined_by else round(1.0 - nearest.get(index, 0.0), SCORE_DIGITS),
        )
        for index, record in enumerate(prepared)
    }
    links = tuple(link_of[record.record_id] for record in payload.records)
    review_pairs = sorted(
        (_review_pair(prepared[a], prepared[b], pair, note) for a, b, pair, note in review),
        key=lambda p: (p.record_a, p.record_b),
    )
    return LinkEntitiesResult(
        version=VERSION,
        links=links,
        review=tuple(review_pairs[:MAX_REVIEW_PAIRS]),
        review_truncated=len(review_pairs) > MAX_REVIEW_PAIRS,
        entities=len(set(entity_ids)),
    )


def score_pair(a: _Prepared, b: _Prepared) -> PairScore:
    """How likely two records are one organisation, and the evidence, in the order applied."""
    name, name_reason = name_similarity(a.name, b.name)
    reasons = [name_reason]
    score = name
    corroborated = False  # by something other than the name: an EIN, a domain, a town
    if a.ein and b.ein:
        if a.ein != b.ein:
            return PairScore(0.0, (*reasons, f"different EINs {a.ein} and {b.ein}"))
        score = SAME_EIN_SCORE if name >= SAME_EIN_MIN_NAME else max(score, SAME_EIN_WEAK_NAME_SCORE)
        reasons.append(f"same EIN {a.ein}")
        corroborated = True
    if a.domain and b.domain:
        if a.domain == b.domain:
            score += SAME_DOMAIN_BONUS
            corroborated = True
            if _core_words_within(a.name, b.name) or _core_words_within(b.name, a.name):
                score = max(score, SAME_DOMAIN_SHARED_WORD_SCORE)
            reasons.append(f"same website domain {a.domain}")
        elif a.domain.split(".", 1)[0] == b.domain.split(".", 1)[0]:
            score += SAME_DOMAIN_LABEL_BONUS
            reasons.append(f"websites {a.domain} and {b.domain} differ only in suffix")
        else:
            score -= OTHER_DOMAIN_PENALTY
            reasons.append(f"different websites {a.domain} and {b.domain}")
    if a.location and b.location:
        place = _location_evidence(a.location, b.location, reasons)
        score += place.adjustment
        corroborated = corroborated or place.same_town
    if not corroborated and score > UNCORROBORATED_ONE_WORD_CAP and min(_word_count(a.name), _word_count(b.name)) < 2:
        score = UNCORROBORATED_ONE_WORD_CAP
        reasons.append("a one-word name with nothing else in common")
    return PairScore(round(min(1.0, max(0.0, score)), SCORE_DIGITS), tuple(reasons))


def _word_count(name: OrgName) -> int:
    return len(_significant_words(name))


def name_similarity(a: OrgName, b: OrgName) -> tuple[float, str]:
    from rapidfuzz import fuzz
    from rapidfuzz.distance import JaroWinkler

    if a.full == b.full:
        return 1.0, f"same name {a.full!r}"
    sort_ratio = fuzz.token_sort_ratio(a.core, b.core) / 100
    jaro_winkler = JaroWinkler.normalized_similarity(a.core, b.core)
    score = round((sort_ratio + min(sort_ratio + 0.1, jaro_winkler)) / 2, SCORE_DIGITS)
    how = "similar names"
    if _is_acronym_of(a, b) or _is_acronym_of(b, a):
        score, how = max(score, ACRONYM_SCORE), "one name is the other's acronym"
    elif _is_word_subset(a, b) or _is_word_subset(b, a):
        score, how = max(score, SUBSET_NAME_SCORE), "one name's words are all in the other"
    if a.kinds and b.kinds and not a.kinds & b.kinds:
        score = min(score, DIFFERENT_KINDS_CAP)
        how += f" but of different kinds ({'/'.join(sorted(a.kinds))} vs {'/'.join(sorted(b.kinds))})"
    return score, f"{how} {a.full!r} ~ {b.full!r}: {score:.2f}"


def _is_acronym_of(short: OrgName, long: OrgName) -> bool:
    return " " not in short.core and len(short.core) >= 3 and short.core in (long.acronym, long.full_acronym)


def _significant_words(name: OrgName) -> set[str]:
    return set(name.core.split()) - STOP_WORDS


# words that make a name an affiliate of the shorter one rather than the same body:
# "Simons Foundation International", "Bertelsmann Foundation North America", "... (UK Branch)"
AFFILIATE_WORDS = frozenset(
    {
        "international", "global", "europe", "european", "america", "american", "north", "south", "east",
        "west", "uk", "us", "branch", "chapter", "office", "usa", "canada", "india", "africa", "asia",
        "schweiz", "suisse", "deutschland", "france", "ireland", "scotland", "wales", "australia",
    }
)  # fmt: skip


def _core_words_within(small: OrgName, big: OrgName) -> bool:
    words, bigger = _significant_words(small), _significant_words(big)
    return bool(words) and words <= bigger and not (bigger - words) & AFFILIATE_WORDS


def _is_word_subset(small: OrgName, big: OrgName) -> bool:
    """Every word of a name of two or more significant words appears in the other ("Melinda
    Gates Foundation" in "Bill and Melinda Gates Foundation"); one word is too little to go on."""
    return len(_significant_words(small)) >= 2 and _core_words_within(small, big)


@dataclass(frozen=True, slots=True)
class _PlaceEvidence:
    adjustment: float
    contradiction: bool = False  # two countries or two states: no cluster may hold both records
    same_town: bool = False


def _location_evidence(a: Location, b: Location, reasons: list[str]) -> _PlaceEvidence:
    if a.country and b.country and a.country != b.country:
        reasons.append(f"different countries {a.country} and {b.country}")
        return _PlaceEvidence(-OTHER_COUNTRY_PENALTY, contradiction=True)
    if a.subdivision and b.subdivision and a.subdivision != b.subdivision:
        reasons.append(f"different states {a.subdivision} and {b.subdivision}")
        return _PlaceEvidence(-OTHER_STATE_PENALTY, contradiction=True)
    shared = sorted(x for x in a.localities for y in b.localities if _same_town(x, y))
    if shared:
        reasons.append(f"same city {shared[-1]}")
        return _PlaceEvidence(SAME_CITY_BONUS, same_town=True)
    if a.localities and b.localities:
        reasons.append(f"different towns {a.city} and {b.city}")
        return _PlaceEvidence(-OTHER_TOWN_PENALTY)
    return _PlaceEvidence(0.0)


def _same_town(a: str, b: str) -> bool:
    """Spellings of one town ("Hannover", "Hanover") count as one."""
    from rapidfuzz import fuzz

    return a == b or fuzz.ratio(a, b) >= SAME_TOWN_MIN_RATIO


def _prepare(record: OrganisationRecord) -> _Prepared:
    return _Prepared(
        record_id=record.record_id,
        name=normalise(record.name),
        ein=record.ein.replace("-", "") if record.ein else None,
        domain=registered_domain(record.website) if record.website else None,
        location=parse_location(record.location) if record.location else None,
    )


@functools.cache
def _domain_extractor() -> TLDExtract:
    import tldextract

    # the Public Suffix List snapshot inside the wheel: no download, no cache on disk
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True)


def registered_domain(website: str) -> str | None:
    """ "https://www.gatesfoundation.org/about" -> "gatesfoundation.org"; None for a host that
    names no organisation of its own (an IP address, a shared host)."""
    parts = _domain_extractor()(website.strip().lower())
    if not parts.domain or not parts.suffix:
        return None
    domain = f"{parts.domain}.{parts.suffix}"
    return None if domain in SHARED_HOSTS else domain


def _candidate_pairs(prepared: list[_Prepared]) -> list[tuple[int, int]]:
    """Pairs (i < j) worth scoring: names alike enough, an acronym, or a shared EIN or domain."""
    from rapidfuzz import fuzz, process

    pairs: set[tuple[int, int]] = set()
    cores = [p.name.core for p in prepared]
    for i, core in enumerate(cores):
        for _, _, j in process.extract(
            core, cores, scorer=fuzz.token_sort_ratio, score_cutoff=CANDIDATE_NAME_CUTOFF, limit=None
        ):
            if j != i:
                pairs.add((min(i, j), max(i, j)))
    for key in ("ein", "domain", "acronym", "full_acronym"):
        groups: dict[str, list[int]] = {}
        for index, item in enumerate(prepared):
            value = _blocking_key(item, key)
            if value:
                groups.setdefault(value, []).append(index)
        for members in groups.values():
            pairs.update((a, b) for n, a in enumerate(members) for b in members[n + 1 :])
    return sorted(pairs)


def _blocking_key(item: _Prepared, key: str) -> str | None:
    if key == "ein":
        return item.ein
    if key == "domain":
        return item.domain
    if key == "full_acronym":
        return _full_acronym_key(item)
    # an acronym meets the name it abbreviates under the same key
    if " " not in item.name.core and len(item.name.core) >= 3:
        return item.name.core
    return item.name.acronym if len(item.name.acronym) >= 3 else None


def _full_acronym_key(item: _Prepared) -> str | None:
    if " " not in item.name.core and len(item.name.core) >= 3:
        return item.name.core
    return item.name.full_acronym if len(item.name.full_acronym) >= 3 else None


def _review_pair(a: _Prepared, b: _Prepared, pair: PairScore, note: str | None) -> ReviewPair:
    first, second = sorted((a.record_id, b.record_id))
    reasons = (*pair.reasons, note) if note else pair.reasons
    return ReviewPair(record_a=first, record_b=second, score=pair.score, reasons=tuple(r[:200] for r in reasons))


def _contradict(a: _Prepared, b: _Prepared) -> bool:
    if a.ein and b.ein and a.ein != b.ein:
        return True
    if a.location and b.location:
        return _location_evidence(a.location, b.location, []).contradiction
    return False


class _Clusters:
    """Union-find over record indexes that refuses a join putting two contradicting records in
    one cluster (clusters are small: the check is over their members)."""

    def __init__(self, prepared: list[_Prepared], contradict: Callable[[int, int], bool]) -> None:
        self._ids = [p.record_id for p in prepared]
        self._parent = list(range(len(prepared)))
        self._members: list[list[int]] = [[index] for index in range(len(prepared))]
        self._contradict = contradict

    def _root(self, index: int) -> int:
        while self._parent[index] != index:
            self._parent[index] = self._parent[self._parent[index]]
            index = self._parent[index]
        return index

    def same(self, a: int, b: int) -> bool:
        return self._root(a) == self._root(b)

    def join(self, a: int, b: int) -> bool:
        root_a, root_b = self._root(a), self._root(b)
        if any(self._contradict(i, j) for i in self._members[root_a] for j in self._members[root_b]):
            return False
        low, high = sorted((root_a, root_b))
        self._parent[high] = low
        self._members[low] += self._members[high]
        self._members[high] = []
        return True

    def entity_ids(self) -> list[str]:
        members: dict[int, list[str]] = {}
        for index, record_id in enumerate(self._ids):
            members.setdefault(self._root(index), []).append(record_id)
        ids = {root: entity_id(names) for root, names in members.items()}
        return [ids[self._root(index)] for index in range(len(self._ids))]


def entity_id(record_ids: list[str]) -> str:
    """The canonical id of a cluster: a hash of its sorted record ids."""
    digest = hashlib.sha256("\n".join(sorted(record_ids)).encode()).hexdigest()
    return f"ent-{digest[:24]}"


SAMPLE_PAYLOADS: tuple[LinkEntitiesPayload, ...] = (
    LinkEntitiesPayload(
        records=(
            OrganisationRecord(
                record_id="irs:56-2618866",
                source="irs-bmf",
                name="BILL & MELINDA GATES FOUNDATION",
                ein="56-2618866",
                location="Seattle, WA",
            ),
            OrganisationRecord(
                record_id="web:gates",
                source="crawl",
                name="The Bill and Melinda Gates Foundation",
                website="https://www.gatesfoundation.org/",
                location="500 Fifth Avenue North, Seattle, WA 98109",
            ),
            OrganisationRecord(
                record_id="ccew:1129917",
                source="charity-commission",
                name="Nuffield Foundation",
                website="https://www.nuffieldfoundation.org",
                location="London, UK",
            ),
            OrganisationRecord(
                record_id="ccew:209201",
                source="charity-commission",
                name="The Nuffield Trust",
                website="https://www.nuffieldtrust.org.uk",
                location="London, UK",
            ),
        )
    ),
    LinkEntitiesPayload(
        records=(OrganisationRecord(record_id="one", source="s", name="Wellcome Trust"),),
        match_threshold=0.95,
        review_threshold=0.5,
    ),
)

# What a result must hold beyond its schema (ccn_jobs.result_rules); bump `version` with any change.
RESULT_RULES = ResultRules(
    version="1",
    rules=(
        Allowed(path="version", values=(VERSION,), note="results of another linker are not comparable"),
        Mandatory(path="links", note="every payload has a record, and every record a link"),
        Size(path="links", max_length=MAX_RECORDS),
        Mandatory(path="links[].record_id"),
        Format(path="links[].canonical_entity_id", regex=r"ent-[0-9a-f]{24}"),
        Bounds(path="links[].confidence", ge=0.0, le=1.0),
        Bounds(path="review[].score", ge=0.0, le=1.0),
        Bounds(path="entities", ge=1, le=MAX_RECORDS),
    ),
)

LINK_ENTITIES: JobType[LinkEntitiesPayload, LinkEntitiesResult] = JobType(
    name=NAME,
    version=VERSION,
    payload_type=LinkEntitiesPayload,
    result_type=LinkEntitiesResult,
    result_rules=RESULT_RULES,
    handler=link_entities,
    consent_scope="nlp",
    description="Cluster organisation records from several sources into canonical entities (CC-73)",
    sample_payloads=SAMPLE_PAYLOADS,
)
