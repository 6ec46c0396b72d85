"""The document classifier's pure core: features of a text, a linear model read from JSON,
keyword rules read from JSON, and the two combined into one probability per class.

The model is TF-IDF over words and word pairs followed by a multinomial logistic regression,
trained by `ccn jobs train-classifier` (ccn_jobs.classifier_training) and shipped as
data/classifier_model.json: the vocabulary with each term's IDF and one coefficient per class.
Loading it evaluates nothing (no pickle), and scoring is a few sums in Python floats, done in
sorted feature order, so every node computes the same numbers.

Rules (data/classify_rules.json, or a document of the same form given in a job's payload) add a
boost to a class's log-odds when any of their phrases occurs in the title, the text or the
page's domain. A phrase is matched as a whole sequence of words, case-folded, never as a regular
expression, so no rule an administrator writes can make matching slow: the cost is one set
lookup per phrase, against the word sequences of at most `MAX_PHRASE_WORDS` words that the
document holds."""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections import Counter
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from ccn_proto.constraints import END

DATA_DIR = Path(__file__).resolve().parent / "data"
MODEL_PATH = DATA_DIR / "classifier_model.json"
RULES_PATH = DATA_DIR / "classify_rules.json"

Label = Literal["grant_opportunity", "funder_profile", "news", "event", "report", "job_posting", "irrelevant"]
LABELS: tuple[Label, ...] = (
    "grant_opportunity",
    "funder_profile",
    "news",
    "event",
    "report",
    "job_posting",
    "irrelevant",
)

# Features come from the title and the first FEATURE_TEXT_CHARS characters of the text: what a
# page is shows early, and the cost of a long page stays bounded.
FEATURE_TEXT_CHARS = 20_000
MAX_WORD_CHARS = 40
MAX_PHRASE_WORDS = 5
MAX_RULES = 200
MAX_PHRASES_PER_RULE = 64
MAX_PHRASE_CHARS = 100
MAX_BOOST = 10.0
MAX_VOCABULARY = 50_000

_WORD = re.compile(r"\w+")
_DIGITS = str.maketrans("0123456789", "0000000000")

RuleId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=rf"^[a-z0-9][a-z0-9_.-]*{END}")]
Version = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=rf"^[A-Za-z0-9._-]+{END}")]
Phrase = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PHRASE_CHARS)]
Boost = Annotated[float, msgspec.Meta(ge=-MAX_BOOST, le=MAX_BOOST)]


class Rule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When any phrase occurs in `field`, add `boost` to `label`'s log-odds. For `domain`, a
    phrase is a host name or a suffix of one ("grants.gov" matches www.grants.gov)."""

    id: RuleId
    label: Label
    boost: Boost
    field: Literal["title", "text", "domain"] = "text"
    any: Annotated[list[Phrase], msgspec.Meta(min_length=1, max_length=MAX_PHRASES_PER_RULE)]

    def __post_init__(self) -> None:
        for phrase in self.any:
            words = phrase_words(phrase) if self.field != "domain" else [phrase]
            if not words or len(words) > MAX_PHRASE_WORDS:
                raise ValueError(f"rule {self.id}: phrase {phrase!r} must have 1 to {MAX_PHRASE_WORDS} words")


class ClassificationRules(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A versioned set of rules: `version` goes into every result classified with it."""

    version: Version
    rules: Annotated[list[Rule], msgspec.Meta(max_length=MAX_RULES)]

    def __post_init__(self) -> None:
        ids = [rule.id for rule in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError("rule ids must be unique")


class LinearModel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """TF-IDF (sublinear tf, l2-normalised) then one linear score per class.
    `terms` maps a feature to [idf, coefficient for each of `labels`]."""

    format: Literal["ccn-linear-classifier/1"]
    version: Version
    labels: list[Label]
    intercepts: list[float]
    terms: dict[str, list[float]]
    trained_on: dict[str, str | int | float]

    def __post_init__(self) -> None:
        if sorted(self.labels) != sorted(LABELS) or len(self.intercepts) != len(self.labels):
            raise ValueError(f"the model must score exactly {', '.join(LABELS)}")
        if len(self.terms) > MAX_VOCABULARY:
            raise ValueError(f"the model has {len(self.terms)} terms; at most {MAX_VOCABULARY}")
        width = 1 + len(self.labels)
        if any(len(row) != width or not all(math.isfinite(v) for v in row) for row in self.terms.values()):
            raise ValueError(f"each term needs {width} finite numbers: its idf and one coefficient per label")


def words(text: str) -> list[str]:
    """Case-folded words with every digit written as 0 (amounts and years differ; their shape
    is what tells), at most MAX_WORD_CHARS long."""
    return [word[:MAX_WORD_CHARS] for word in _WORD.findall(text.casefold().translate(_DIGITS))]


def phrase_words(phrase: str) -> list[str]:
    return words(phrase)


def features(title: str, text: str) -> list[str]:
    """What the model reads: the title's words twice (as title words, and as plain words, so a
    word learnt from texts counts in a title too), and the words and word pairs of the text."""
    body = words(text[:FEATURE_TEXT_CHARS])
    heading = words(title)
    found = [f"title:{word}" for word in heading]
    found += heading
    found += body
    found += [f"{first} {second}" for first, second in itertools.pairwise(body)]
    return found


def model_log_odds(model: LinearModel, title: str, text: str) -> list[float]:
    weights: dict[str, float] = {}
    for term, count in sorted(Counter(features(title, text)).items()):
        row = model.terms.get(term)
        if row is not None:
            weights[term] = (1.0 + math.log(count)) * row[0]
    norm = math.sqrt(math.fsum(weight * weight for weight in weights.values()))
    scores = []
    for index, intercept in enumerate(model.intercepts):
        terms = (weight / norm * model.terms[term][index + 1] for term, weight in weights.items()) if norm else ()
        scores.append(intercept + math.fsum(terms))
    return scores


def fired_rules(rules: ClassificationRules, title: str, text: str, domain: str | None) -> list[Rule]:
    """The rules any of whose phrases occur, in the order they are written."""
    grams = {"title": _word_sequences(words(title)), "text": _word_sequences(words(text[:FEATURE_TEXT_CHARS]))}
    host = (domain or "").lower().rstrip(".")
    fired = []
    for rule in rules.rules:
        if rule.field == "domain":
            hit = bool(host) and any(host == p.lower() or host.endswith("." + p.lower()) for p in rule.any)
        else:
            hit = any(" ".join(phrase_words(phrase)) in grams[rule.field] for phrase in rule.any)
        if hit:
            fired.append(rule)
    return fired


def _word_sequences(tokens: list[str]) -> set[str]:
    return {
        " ".join(tokens[start : start + length])
        for length in range(1, MAX_PHRASE_WORDS + 1)
        for start in range(len(tokens) - length + 1)
    }


def probabilities(log_odds: list[float]) -> list[float]:
    top = max(log_odds)
    exps = [math.exp(value - top) for value in log_odds]
    total = math.fsum(exps)
    return [value / total for value in exps]


@functools.cache
def shipped_model() -> LinearModel:
    return load_model(MODEL_PATH.read_bytes())


@functools.cache
def shipped_rules() -> ClassificationRules:
    return load_rules(RULES_PATH.read_bytes())


def load_model(raw: bytes) -> LinearModel:
    return msgspec.json.decode(raw, type=LinearModel)


def load_rules(raw: bytes) -> ClassificationRules:
    """Rules from a JSON document; msgspec.ValidationError names the first bad field."""
    return msgspec.json.decode(raw, type=ClassificationRules)
