"""Job type `classify_document` (CC-71): which kind of page a text is, with a confidence.

Classes (document_classifier.LABELS):
  grant_opportunity  an open call: a programme someone can apply to, with terms and a deadline
  funder_profile     who a funder is: history, mission, governance, what it has funded
  news               a report of something that happened (awards made, a fund launched, people)
  event              a dated gathering: a funding fair, a webinar, a workshop
  report             an annual, impact, evaluation or research report
  job_posting        a vacancy (which has a closing date too, and is no grant)
  irrelevant         anything else: site chrome, shops, recipes, investment funds, sport

The class probabilities come from a linear model over the title and text, plus keyword rules
that administrators edit without a code change (document_classifier). The payload may carry
its own rules; otherwise the shipped data/classify_rules.json applies. Either way the result
names the model and rules versions, so results are only compared between equal versions.

A result with confidence below `REVIEW_BELOW`, or from a text of fewer than `MIN_WORDS` words,
is flagged `needs_review`: a person looks at it before the classification is used. 0.6 asks
that one class be more likely than all the others together, with a margin; it was set before
the held-out split was scored, not fitted to it. On that split (the `nlp` bench group) it
flags nearly every mistake, and many correct answers too: the price of a model trained on a
small sample, which the review queue pays until real labelled pages are added to it.

Determinism: probabilities are rounded to `DIGITS` decimals before they enter the result; the
sums behind them are exactly rounded (math.fsum) in a fixed order, so only exp and log, to their
last bit, depend on the platform's maths library, and the rounding absorbs that."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

import msgspec

from ccn_jobs.consensus_rules import Comparator, ConsensusSpec, NumericTolerance
from ccn_jobs.document_classifier import (
    LABELS,
    ClassificationRules,
    Label,
    LinearModel,
    RuleId,
    Version,
    fired_rules,
    model_log_odds,
    probabilities,
    shipped_model,
    shipped_rules,
    words,
)
from ccn_jobs.job_type import JobType
from ccn_jobs.result_rules import Allowed, Bounds, Format, Mandatory, ResultRules, Size
from ccn_proto.constraints import END

NAME = "classify_document"
VERSION = "2"

MAX_TEXT_CHARS = 200_000  # extract_text's own bound on the text it returns
MAX_TITLE_CHARS = 1_000
MAX_URL_CHARS = 2048
REVIEW_BELOW = 0.6
MIN_WORDS = 5
DIGITS = 4

Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS, description="the page's clean text")]
Title = Annotated[str, msgspec.Meta(max_length=MAX_TITLE_CHARS)]
Url = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=MAX_URL_CHARS, pattern=rf"^https?://\S+{END}", description="where the page was"
    ),
]
Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class ClassifyDocumentPayload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`text` as extract_text returns it; `url` gives the domain the rules may look at; `rules`
    replaces the shipped rules for this job."""

    text: Text
    title: Title | None = None
    url: Url | None = None
    rules: ClassificationRules | None = None


class LabelScore(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    label: Label
    probability: Probability


class ClassifyDocumentResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`label` is the most probable class and `confidence` its probability; `scores` holds every
    class in LABELS order; `matched_rules` the ids of the rules that fired, in rule order."""

    label: Label
    confidence: Probability
    needs_review: bool
    scores: Annotated[list[LabelScore], msgspec.Meta(min_length=len(LABELS), max_length=len(LABELS))]
    matched_rules: Annotated[list[RuleId], msgspec.Meta(max_length=200)]
    version: Version
    model_version: Version
    rules_version: Version

    def __post_init__(self) -> None:
        # checked on decode as well, so validation rejects a result that contradicts itself
        if [score.label for score in self.scores] != list(LABELS):
            raise ValueError(f"scores must list every label once, in the order {', '.join(LABELS)}")
        best = max(self.scores, key=lambda score: score.probability)
        if self.confidence != best.probability or self.label != best.label:
            raise ValueError("label and confidence must be the most probable class")


def classify_document(payload: ClassifyDocumentPayload) -> ClassifyDocumentResult:
    return classify_with(shipped_model(), payload.rules or shipped_rules(), payload)


def classify_with(
    model: LinearModel, rules: ClassificationRules, payload: ClassifyDocumentPayload
) -> ClassifyDocumentResult:
    """The handler with its model and rules given: for training, which scores a model before it ships."""
    title = payload.title or ""
    log_odds = dict(zip(model.labels, model_log_odds(model, title, payload.text), strict=True))
    fired = fired_rules(rules, title, payload.text, _domain(payload.url))
    for rule in fired:
        log_odds[rule.label] += rule.boost
    rounded = [round(p, DIGITS) for p in probabilities([log_odds[label] for label in LABELS])]
    scores = [LabelScore(label=label, probability=p) for label, p in zip(LABELS, rounded, strict=True)]
    # max() keeps the first of equal maxima: ties go to the earlier label, on every node alike
    best = max(scores, key=lambda score: score.probability)
    too_short = len(words(title + " " + payload.text[:2_000])) < MIN_WORDS
    return ClassifyDocumentResult(
        label=best.label,
        confidence=best.probability,
        needs_review=best.probability < REVIEW_BELOW or too_short,
        scores=scores,
        matched_rules=[rule.id for rule in fired],
        version=VERSION,
        model_version=model.version,
        rules_version=rules.version,
    )


def _domain(url: str | None) -> str | None:
    if url is None:
        return None
    try:
        return urlsplit(url).hostname
    except ValueError:  # a malformed port or bracketed host: no domain to judge by
        return None


SAMPLE_PAYLOADS: tuple[ClassifyDocumentPayload, ...] = (
    ClassifyDocumentPayload(
        text="The Riverbend Community Foundation invites applications for its 2027 Small Grants "
        "Program. Registered nonprofits may apply for awards of up to $25,000. Applications are due "
        "March 15, 2027.",
        title="Small Grants Program 2027",
        url="https://riverbend.example.org/grants",
    ),
    ClassifyDocumentPayload(text="Our bakery opens at 7 am every day. Try the sourdough and the cinnamon rolls."),
)

CONSENSUS = ConsensusSpec(
    # the label and the rules that fired must match; probabilities may differ in their last
    # digits between CPUs and maths libraries
    comparator=Comparator(
        rules=(
            NumericTolerance(path="confidence", abs_tol=1e-6),
            NumericTolerance(path="scores[].probability", abs_tol=1e-6),
        )
    ),
)


# What a result must hold beyond its schema (ccn_jobs.result_rules); bump `version` with any change.
RESULT_RULES = ResultRules(
    version="1",
    rules=(
        Allowed(path="version", values=(VERSION,), note="results of another classifier are not comparable"),
        Allowed(path="label", values=LABELS),
        Bounds(path="confidence", ge=0.0, le=1.0),
        Size(path="scores", min_length=len(LABELS), max_length=len(LABELS), note="one score per label"),
        Allowed(path="scores[].label", values=LABELS),
        Bounds(path="scores[].probability", ge=0.0, le=1.0),
        Mandatory(path="model_version"),
        Mandatory(path="rules_version"),
        Format(path="matched_rules[]", regex=r"[a-z0-9][a-z0-9_.-]{0,63}"),
    ),
)

CLASSIFY_DOCUMENT: JobType[ClassifyDocumentPayload, ClassifyDocumentResult] = JobType(
    name=NAME,
    version=VERSION,
    payload_type=ClassifyDocumentPayload,
    result_type=ClassifyDocumentResult,
    result_rules=RESULT_RULES,
    handler=classify_document,
    consent_scope="nlp",
    description="The kind of page a text is (grant opportunity, funder profile, news, ...) with a confidence (CC-71)",
    sample_payloads=SAMPLE_PAYLOADS,
    consensus=CONSENSUS,
)
