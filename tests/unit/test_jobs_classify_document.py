"""classify_document: the shipped model and rules load and validate, pages of each kind get
their class, administrators' rules change the outcome without code, low confidence is flagged,
and payloads, rules and results off their schema are refused with the field named."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ccn_cli.main import main
from ccn_jobs.classifier_training import encode_model, read_sample, sample_digest, train
from ccn_jobs.classify_document import (
    MAX_TEXT_CHARS,
    REVIEW_BELOW,
    VERSION,
    ClassifyDocumentPayload,
    ClassifyDocumentResult,
    classify_document,
)
from ccn_jobs.document_classifier import (
    LABELS,
    MAX_PHRASE_WORDS,
    RULES_PATH,
    features,
    load_model,
    load_rules,
    shipped_model,
    shipped_rules,
)
from ccn_jobs.errors import InvalidPayload, InvalidResult
from ccn_jobs.nlp_corpus import SAMPLE_PATH, classification_documents
from ccn_jobs.nlp_metrics import classification_scores
from ccn_jobs.nlp_training_wording import TRAINING_ONLY_INTL, TRAINING_ONLY_WORDING
from ccn_jobs.registry import JOB_TYPES, decode_payload, decode_result, result_to_builtins, run_job
from tests.support.sizes import SLOW

GRANT = (
    "Community Climate Fund 2027: call for applications",
    "The Riverside Foundation invites applications from registered charities and community groups for projects "
    "that cut carbon and restore green spaces. Grants of between £5,000 and £40,000 are available for up to two "
    "years. Who can apply: constituted groups with a bank account. The closing date for applications is "
    "14 March 2027 at 5pm. Read the guidance notes and complete the online application form.",
)
JOB = (
    "Vacancy: Grants Officer",
    "Salary £31,000 per annum, 35 hours per week, permanent. You will assess applications, carry out due "
    "diligence and support grantees. To apply, send your CV and a covering letter by 2 February 2027. "
    "Download the job description and person specification below.",
)
COOKIES = (
    "Cookie policy",
    "We use cookies to remember your preferences. You can change your cookie settings at any time.",
)


def classify(title: str, text: str, **extra: Any) -> ClassifyDocumentResult:
    return classify_document(ClassifyDocumentPayload(title=title, text=text, **extra))


def test_the_job_type_is_registered_with_its_types() -> None:
    job = JOB_TYPES["classify_document"]
    assert (job.payload_type, job.result_type, job.handler) == (
        ClassifyDocumentPayload,
        ClassifyDocumentResult,
        classify_document,
    )


def test_the_shipped_model_and_rules_load_and_name_their_versions() -> None:
    model, rules = shipped_model(), shipped_rules()
    assert sorted(model.labels) == sorted(LABELS)
    assert len(model.terms) > 1_000
    assert model.trained_on["sample_sha256"] == sample_digest(SAMPLE_PATH), "retrain: the sample changed"
    assert rules.version and {rule.label for rule in rules.rules} <= set(LABELS)


@pytest.mark.parametrize(
    ("page", "label"), [(GRANT, "grant_opportunity"), (JOB, "job_posting"), (COOKIES, "irrelevant")]
)
def test_pages_get_their_class_with_confidence(page: tuple[str, str], label: str) -> None:
    result = classify(*page, url="https://example.org/page")
    assert result.label == label
    assert result.confidence >= REVIEW_BELOW and not result.needs_review
    assert [score.label for score in result.scores] == list(LABELS)
    assert abs(sum(score.probability for score in result.scores) - 1) < 1e-3
    assert (result.version, result.model_version, result.rules_version) == (
        VERSION,
        shipped_model().version,
        shipped_rules().version,
    )


def test_held_out_accuracy_does_not_regress() -> None:
    """The sample's held-out split, worded differently from anything trained on (nlp_corpus):
    a guard against a worse model or rules shipping; the bench reports the exact figures."""
    heldout = [doc for doc in read_sample(SAMPLE_PATH) if doc.split == "heldout"]
    predicted = [classify(doc.title, doc.text, url=doc.url).label for doc in heldout]
    scores = classification_scores([doc.label for doc in heldout], predicted, LABELS)
    assert scores.accuracy >= 0.90
    assert all(label.recall >= 0.8 for label in scores.per_class), scores.per_class


def test_wording_written_for_training_reaches_training_documents_only() -> None:
    """The held-out split must stay what it measures: sentences no training saw. Each
    training-only sentence is recognised by its longest run of words free of slots."""
    documents = classification_documents()
    written = [
        max(re.split(r"\{[a-z0-9]+\}", sentence), key=len).strip()
        for sections in (*TRAINING_ONLY_WORDING.values(), *TRAINING_ONLY_INTL.values())
        for section in sections
        for sentence in section
    ]
    heldout = [f"{d.title} {d.text}" for d in documents if d.split == "heldout"]
    training = [f"{d.title} {d.text}" for d in documents if d.split == "train"]
    assert not [piece for piece in written if any(piece in text for text in heldout)]
    assert sum(1 for piece in written if any(piece in text for text in training)) > len(written) // 2


def test_a_short_or_empty_text_is_flagged_for_review() -> None:
    assert classify("", "").needs_review
    assert classify("Hello", "world").needs_review


def test_rules_in_the_payload_replace_the_shipped_ones() -> None:
    rules = {
        "version": "admin-2027-01",
        "rules": [{"id": "never-grants", "label": "irrelevant", "boost": 10, "any": ["Riverside Foundation"]}],
    }
    result = run_job("classify_document", {"title": GRANT[0], "text": GRANT[1], "rules": rules})
    assert isinstance(result, ClassifyDocumentResult)
    assert (result.label, result.matched_rules, result.rules_version) == (
        "irrelevant",
        ["never-grants"],
        "admin-2027-01",
    )
    # without the rule the shipped rules apply, and name their own version
    assert classify(*GRANT).rules_version == shipped_rules().version


def test_a_phrase_matches_whole_words_case_folded_and_a_domain_its_subdomains() -> None:
    rules = load_rules(
        json.dumps(
            {
                "version": "t",
                "rules": [
                    {"id": "phrase", "label": "news", "boost": 1, "any": ["ANNOUNCED today"]},
                    {"id": "domain", "label": "news", "boost": 1, "field": "domain", "any": ["news.example"]},
                ],
            }
        ).encode()
    )
    hits = {
        (text, url): classify("", text, url=url, rules=rules).matched_rules
        for text, url in [
            ("It was announced, today, that", "https://www.news.example/a"),
            ("unannounced today", "https://fakenews.example/a"),
            ("announced todays", "https://news.example.evil/a"),
        ]
    }
    assert list(hits.values()) == [["phrase", "domain"], [], []]


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ({"version": "v", "rules": [{"id": "a", "label": "grant", "boost": 1, "any": ["x"]}]}, "rules.rules[0].label"),
        ({"version": "v", "rules": [{"id": "a", "label": "news", "boost": 11, "any": ["x"]}]}, "rules.rules[0].boost"),
        ({"version": "v", "rules": [{"id": "a", "label": "news", "boost": 1, "any": []}]}, "rules.rules[0].any"),
        ({"version": "v", "rules": [{"id": "a", "label": "news", "boost": 1, "any": ["(+)*$"]}]}, None),
        ({"version": "v", "rules": [{"id": "a", "label": "news", "boost": 1, "any": ["a b c d e f"]}]}, None),
        (
            {"version": "v", "rules": [{"id": "a", "label": "news", "boost": 1, "any": ["x"], "regex": "."}]},
            "rules.rules[0].regex",
        ),
        ({"version": "v v", "rules": []}, "rules.version"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(rules: dict[str, Any], field: str | None) -> None:
    with pytest.raises(InvalidPayload) as caught:
        decode_payload("classify_document", {"text": "x", "rules": rules})
    if field is not None:
        assert caught.value.field == field
    else:  # a phrase with no words, or too many: refused whole, the reason says which
        assert f"1 to {MAX_PHRASE_WORDS} words" in caught.value.reason


@pytest.mark.timeout(30)
def test_a_phrase_written_as_a_regular_expression_is_only_words() -> None:
    """Rules are never compiled: "(a+)+$" is the word "a", and a text built to make that regex
    backtrack is matched in linear time."""
    rules = {"version": "v", "rules": [{"id": "r", "label": "news", "boost": 1, "any": ["(a+)+$"]}]}
    hostile = "a" * 50_000 + "!"
    result = run_job("classify_document", {"text": hostile, "rules": rules})
    assert isinstance(result, ClassifyDocumentResult) and result.matched_rules == []
    assert classify("", "a b", rules=load_rules(json.dumps(rules).encode())).matched_rules == ["r"]


def test_duplicate_rule_ids_are_refused() -> None:
    rule = {"id": "a", "label": "news", "boost": 1, "any": ["x"]}
    with pytest.raises(msgspec.ValidationError, match="unique"):
        load_rules(json.dumps({"version": "v", "rules": [rule, rule]}).encode())


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"text": 5}, "text"),
        ({"text": "x" * (MAX_TEXT_CHARS + 1)}, "text"),
        ({"text": "x", "url": "ftp://x"}, "url"),
        ({"text": "x", "title": "t" * 1_001}, "title"),
        ({"text": "x", "colour": "red"}, "colour"),
        ({}, "text"),
    ],
)
def test_payloads_off_the_schema_are_refused_naming_the_field(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        decode_payload("classify_document", payload)
    assert caught.value.field == field


def test_a_result_that_contradicts_itself_is_refused() -> None:
    good = result_to_builtins(classify(*GRANT))
    assert decode_result("classify_document", good) == classify(*GRANT)
    for change in (
        {"label": "news"},
        {"confidence": 0.5},
        {"scores": good["scores"][::-1]},
        {"scores": good["scores"][:3]},
    ):
        with pytest.raises(InvalidResult):
            decode_result("classify_document", {**good, **change})


def test_text_in_many_scripts_is_classified_without_error() -> None:
    texts = [
        "资助申请截止日期为2027年3月14日。本基金会支持社区艺术项目。",
        "يسر المؤسسة أن تعلن عن منح للمنظمات المجتمعية. آخر موعد للتقديم ١٤ مارس ٢٠٢٧",
        "फाउंडेशन सामुदायिक संगठनों के लिए अनुदान की घोषणा करता है।",
        "Фонд объявляет конкурс грантов для некоммерческих организаций до 14 марта 2027 года.",
        "財団は地域団体への助成金の募集を開始しました。締め切りは2027年3月14日です。",
        "\u202eevil\u202c mixed-direction text with e\u0301\u0301\u0301 combining marks and emoji 🎉💷",
    ]
    for text in texts:
        result = classify("", text)
        assert result.label in LABELS and 0 <= result.confidence <= 1


@pytest.mark.timeout(30)
def test_the_longest_single_line_text_is_classified_in_bounded_time() -> None:
    line = ("grant " * (MAX_TEXT_CHARS // 6))[:MAX_TEXT_CHARS]
    assert classify("", line).label in LABELS
    assert classify("", "a" * MAX_TEXT_CHARS).needs_review


def test_a_megabyte_single_line_is_refused_by_the_schema() -> None:
    with pytest.raises(InvalidPayload) as caught:
        decode_payload("classify_document", b'{"text": "' + b"x" * 1_000_000 + b'"}')
    assert caught.value.field == "text"


def test_features_are_words_pairs_and_title_words_with_digits_as_zero() -> None:
    assert features("Apply Now", "Grants of £5,000") == [
        "title:apply",
        "title:now",
        "apply",
        "now",
        "grants",
        "of",
        "0",
        "000",
        "grants of",
        "of 0",
        "0 000",
    ]


def test_training_is_deterministic_and_writes_a_model_the_job_loads() -> None:
    sample = read_sample(SAMPLE_PATH)
    small = [doc for index, doc in enumerate(sample) if index % 5 == 0]
    first = encode_model(train(small, "test-1", "digest", c_grid=(1.0,), folds=2).model)
    second = encode_model(train(small, "test-1", "digest", c_grid=(1.0,), folds=2).model)
    assert first == second
    assert load_model(first).trained_on["documents"] == sum(doc.split == "train" for doc in small)


@pytest.mark.slow
@pytest.mark.skipif(not SLOW, reason="a full training run (about a minute): set CCN_SLOW=1")
def test_the_shipped_model_is_what_training_on_the_shipped_sample_writes() -> None:
    model = shipped_model()
    retrained = train(read_sample(SAMPLE_PATH), model.version, sample_digest(SAMPLE_PATH)).model
    assert encode_model(retrained) == encode_model(model)


def test_check_rules_command_accepts_the_shipped_rules_and_refuses_bad_ones(tmp_path: Path) -> None:
    assert main(["jobs", "check-rules", str(RULES_PATH)]) == 0
    bad = tmp_path / "rules.json"
    bad.write_text('{"version": "x", "rules": [{"id": "a", "label": "nope", "boost": 1, "any": ["x"]}]}')
    assert main(["jobs", "check-rules", str(bad)]) == 1
