"""Field-level merging: every field of a record keeps the set of candidate values results
proposed for it, each with its provenance, and its value is chosen from them by the field's
rule (ccn_merge.schema). Because the candidates stay, a retracted one is simply left out and
the rule chooses again: the field falls back to the next-best candidate.

The rules, over the candidates not retracted:
  overwrite            the newest observation (then the higher confidence, then the later arrival);
  prefer_source        the candidate whose source comes first in the field's `source_priority`
                       (sources not listed after all listed ones), then as overwrite;
  min / max            the lowest / highest value (amounts by number, dates by calendar order);
  confidence_weighted  values equal but for formatting are one value; the one with the most
                       confidence summed over its candidates (then more candidates, then the
                       newest) wins, spelt as its most confident candidate spelt it;
  append               the set union of every candidate's items (equal but for case and spaces
                       count once), bounded to `max_items`: past the bound the items with the
                       most candidates behind them are kept, then in alphabetical order.
Every choice is a `Winner`: the value, the rule, the candidates that made it and why, so
`explain` can say why a field is what it is, and why each other candidate lost.

Deterministic: ties end on the arrival order of the candidates (`seq`), which the event order
fixes, so replaying the same events gives the same winners.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from ccn_merge.schema import FieldSpec, comparison_key, same_value
from ccn_proto.datasets import FieldChange, FieldValue, MergeRuleName, Provenance, RecordKind

# a field's candidates: past it, a new candidate evicts the oldest observation that is not
# part of the winning value (an unbounded history would be unbounded memory)
MAX_CANDIDATES_PER_FIELD = 256


@dataclass(slots=True)
class Candidate:
    value: FieldValue
    key: str  # the comparison key (ccn_merge.schema.comparison_key)
    provenance: Provenance
    confidence: float
    seq: int  # arrival order in the dataset's history: the last tie-break
    retracted: bool = False


class Winner(msgspec.Struct, frozen=True, kw_only=True):
    value: FieldValue
    rule: MergeRuleName
    chosen: tuple[int, ...]  # seqs of the candidates that made the value
    reason: str


@dataclass(slots=True)
class FieldState:
    candidates: list[Candidate] = field(default_factory=list)
    winner: Winner | None = None


@dataclass(slots=True)
class RecordState:
    record_id: str
    kind: RecordKind
    fields: dict[str, FieldState] = field(default_factory=dict)
    canonical: bytes | None = None  # the published form's bytes, cached until a winner moves

    def value(self, name: str) -> FieldValue | None:
        state = self.fields.get(name)
        return state.winner.value if state is not None and state.winner is not None else None

    def values(self) -> dict[str, FieldValue]:
        return {name: s.winner.value for name, s in sorted(self.fields.items()) if s.winner is not None}


def _newest(candidate: Candidate) -> tuple[datetime, float, int]:
    return (candidate.provenance.observed_at, candidate.confidence, candidate.seq)


def _rank(spec: FieldSpec, source: str) -> int:
    try:
        return spec.source_priority.index(source)
    except ValueError:
        return len(spec.source_priority)


def _ordering_value(value: FieldValue) -> tuple[int, str]:
    # amounts by number, dates (ISO) and codes by text: one key type for both
    return (value, "") if isinstance(value, int) else (0, value) if isinstance(value, str) else (0, "")


def choose(spec: FieldSpec, candidates: list[Candidate]) -> Winner | None:
    """The field's value from its candidates (retracted ones left out) by the field's rule."""
    live = [c for c in candidates if not c.retracted]
    if not live:
        return None
    match spec.rule:
        case "overwrite":
            best = max(live, key=_newest)
            return Winner(value=best.value, rule="overwrite", chosen=(best.seq,), reason="the newest observation")
        case "prefer_source":
            best = max(live, key=lambda c: (-_rank(spec, c.provenance.source), *_newest(c)))
            return Winner(
                value=best.value,
                rule="prefer_source",
                chosen=(best.seq,),
                reason=f"source {best.provenance.source!r} ranks first among the candidates "
                f"(priority {', '.join(spec.source_priority) or 'none'})",
            )
        case "min" | "max":
            pick = min if spec.rule == "min" else max
            target = pick(_ordering_value(c.value) for c in live)
            backers = [c for c in live if _ordering_value(c.value) == target]
            best = max(backers, key=_newest)
            word = "lowest" if spec.rule == "min" else "highest"
            return Winner(
                value=best.value,
                rule=spec.rule,
                chosen=tuple(sorted(c.seq for c in backers)),
                reason=f"the {word} of {len({c.key for c in live})} distinct values",
            )
        case "confidence_weighted":
            groups: dict[str, list[Candidate]] = {}
            for candidate in live:
                groups.setdefault(candidate.key, []).append(candidate)
            _, backers = max(groups.items(), key=lambda item: (*_weight(item[1]), item[0]))
            spelling = max(backers, key=lambda c: (c.confidence, *_newest(c)))
            total = round(sum(c.confidence for c in backers), 6)
            return Winner(
                value=spelling.value,
                rule="confidence_weighted",
                chosen=tuple(sorted(c.seq for c in backers)),
                reason=f"the most confidence behind one value: {total:g} from {len(backers)} candidate(s)",
            )
        case "append":
            return _union(spec, live)
    raise ValueError(f"unknown merge rule {spec.rule!r}")


def _weight(backers: list[Candidate]) -> tuple[float, int, datetime, int]:
    newest = max(backers, key=_newest)
    return (round(sum(c.confidence for c in backers), 6), len(backers), newest.provenance.observed_at, newest.seq)


def _union(spec: FieldSpec, live: list[Candidate]) -> Winner:
    spelling: dict[str, str] = {}
    support: dict[str, list[int]] = {}
    for candidate in sorted(live, key=lambda c: c.seq):
        items = candidate.value if isinstance(candidate.value, list) else [str(candidate.value)]
        for item in items:
            folded = " ".join(item.split()).casefold()
            spelling.setdefault(folded, item)
            support.setdefault(folded, []).append(candidate.seq)
    kept = sorted(support, key=lambda folded: (-len(support[folded]), folded))[: spec.max_items]
    contributors = sorted({seq for folded in kept for seq in support[folded]})
    cut = len(support) - len(kept)
    reason = f"the union of {len(live)} candidate(s)' items" + (
        f", {cut} item(s) past the bound of {spec.max_items} left out" if cut else ""
    )
    return Winner(
        value=[spelling[folded] for folded in sorted(kept)], rule="append", chosen=tuple(contributors), reason=reason
    )


def new_candidate(spec: FieldSpec, value: FieldValue, provenance: Provenance, confidence: float, seq: int) -> Candidate:
    return Candidate(
        value=value, key=comparison_key(spec, value), provenance=provenance, confidence=confidence, seq=seq
    )


def with_candidate(spec: FieldSpec, candidates: list[Candidate], candidate: Candidate) -> list[Candidate]:
    """The field's candidates once `candidate` joins them (a new list). Every observation stays,
    so that a retraction `since` a time falls back to the same node's earlier one; past the
    bound the oldest observation that is not behind the winning value makes room."""
    kept = [*candidates, candidate]
    if len(kept) > MAX_CANDIDATES_PER_FIELD:
        winner = choose(spec, kept)
        chosen = set(winner.chosen) if winner else set()
        oldest = min((c for c in kept if c.seq not in chosen), key=_newest)
        kept = [c for c in kept if c is not oldest]
    return kept


def record_changes(
    record_id: str, specs: dict[str, FieldSpec], before: dict[str, FieldValue | None], after: dict[str, Winner | None]
) -> list[FieldChange]:
    """The fields whose winning value moved, ignoring formatting-only differences, by field name."""
    changes = []
    for name in sorted(after):
        old, winner = before.get(name), after[name]
        new = winner.value if winner is not None else None
        if not same_value(specs[name], old, new):
            changes.append(FieldChange(record_id=record_id, field=name, before=old, after=new))
    return changes


# ---- explain: why a field is what it is ----


class CandidateView(msgspec.Struct, frozen=True, kw_only=True):
    value: FieldValue
    source: str
    job_id: str
    node_id: str
    result_checksum: str
    confidence: float
    observed_at: datetime
    retracted: bool = False


class LosingCandidate(msgspec.Struct, frozen=True, kw_only=True):
    candidate: CandidateView
    why: str


class Explanation(msgspec.Struct, frozen=True, kw_only=True):
    """`winners`: the candidates that made the value (one, or all behind it for min, max,
    confidence_weighted and append); `losers`: every other candidate and why it lost."""

    record_id: str
    field: str
    rule: MergeRuleName
    value: FieldValue | None
    reason: str
    winners: list[CandidateView]
    losers: list[LosingCandidate]
    text: str


def _view(candidate: Candidate) -> CandidateView:
    p = candidate.provenance
    return CandidateView(
        value=candidate.value,
        source=p.source,
        job_id=p.job_id,
        node_id=p.node_id,
        result_checksum=p.result_checksum,
        confidence=candidate.confidence,
        observed_at=p.observed_at,
        retracted=candidate.retracted,
    )


def _why_lost(spec: FieldSpec, loser: Candidate, best: Candidate | None, winner: Winner) -> str:
    if loser.retracted:
        return f"retracted: node {loser.provenance.node_id}'s contributions were withdrawn"
    if best is None:
        return "not chosen"
    match spec.rule:
        case "overwrite":
            if loser.provenance.observed_at == best.provenance.observed_at:
                return "observed at the same time as the winner, but less confident or proposed earlier"
            return (
                f"older: observed {loser.provenance.observed_at.isoformat()}, "
                f"the winner {best.provenance.observed_at.isoformat()}"
            )
        case "prefer_source":
            mine, theirs = _rank(spec, loser.provenance.source), _rank(spec, best.provenance.source)
            if mine > theirs:
                return f"source {loser.provenance.source!r} ranks below {best.provenance.source!r}"
            return f"same rank of source as the winner, but older (observed {loser.provenance.observed_at.isoformat()})"
        case "min":
            return f"{loser.value!r} is above the minimum {winner.value!r}"
        case "max":
            return f"{loser.value!r} is below the maximum {winner.value!r}"
        case "confidence_weighted":
            return f"its value {loser.value!r} has less confidence behind it than {winner.value!r}"
    return f"its items are past the bound of {spec.max_items} items"  # append


def explain(record: RecordState, spec: FieldSpec) -> Explanation:
    """Why the record's field has its value: the rule, the winning candidates, and for every
    other candidate (retracted ones included) why it lost; as data and as a text."""
    state = record.fields.get(spec.name) or FieldState()
    winner = state.winner
    chosen = set(winner.chosen) if winner else set()
    by_seq = {c.seq: c for c in state.candidates}
    best = max((by_seq[seq] for seq in chosen if seq in by_seq), key=_newest, default=None)
    winners = [_view(c) for c in state.candidates if c.seq in chosen]
    losers = [
        LosingCandidate(candidate=_view(c), why=_why_lost(spec, c, best, winner) if winner else "retracted")
        for c in state.candidates
        if c.seq not in chosen
    ]
    rule: MergeRuleName = winner.rule if winner else spec.rule
    reason = winner.reason if winner else "no candidate is left"
    lines = [
        f"{record.record_id}.{spec.name} = {winner.value!r}" if winner else f"{record.record_id}.{spec.name}: no value",
        f"rule: {rule}{' (critical: changes wait for review)' if spec.critical else ''}; {reason}",
    ]
    lines += [f"  won:  {_line_of(view)}" for view in winners]
    lines += [f"  lost: {_line_of(lost.candidate)}: {lost.why}" for lost in losers]
    return Explanation(
        record_id=record.record_id,
        field=spec.name,
        rule=rule,
        value=winner.value if winner else None,
        reason=reason,
        winners=winners,
        losers=losers,
        text="\n".join(lines),
    )


def _line_of(view: CandidateView) -> str:
    return (
        f"{view.value!r} from {view.source} (job {view.job_id}, node {view.node_id}, "
        f"result {view.result_checksum[:12]}, confidence {view.confidence:g}, "
        f"observed {view.observed_at.isoformat()})"
    )
