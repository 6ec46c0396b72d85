"""Training of the document classifier (`ccn jobs train-classifier`): TF-IDF over the same
features the job reads (document_classifier.features), a multinomial logistic regression, and
the result written as JSON the job loads without evaluating anything.

Only the sample's `train` split is used, and the regularisation strength is the one with the
lowest cross-validated log loss inside it (log loss, not accuracy: on a sample this clean every
strength classifies the folds alike, and the loss also rewards sound confidences). Folds of the
training split share its wording, so that choice leans towards weak regularisation; the grid
stops at C=100 to keep confidences from saturating. The `heldout` split is only scored, to report.
scikit-learn (and scipy) are needed here only: a node scores with the JSON and plain Python.
Training is deterministic (lbfgs, fixed fold assignment), so the same sample gives the same
file."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy

from ccn_jobs.document_classifier import LABELS, LinearModel, features
from ccn_jobs.nlp_corpus import LabelledDocument

C_GRID = (1.0, 10.0, 100.0)
FOLDS = 5
MIN_DOCUMENT_FREQUENCY = 2
MAX_FEATURES = 6_000
COEFFICIENT_DIGITS = 5


@dataclass(frozen=True, slots=True)
class Trained:
    model: LinearModel
    cross_validated_log_loss: dict[float, float]


def read_sample(path: Path) -> list[LabelledDocument]:
    decoder = msgspec.json.Decoder(LabelledDocument)
    documents = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            document = decoder.decode(line)
        except msgspec.DecodeError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from exc
        if document.label not in LABELS or document.split not in {"train", "heldout"}:
            raise ValueError(f"{path}:{number}: label must be one of {LABELS} and split train or heldout")
        documents.append(document)
    return documents


def train(
    documents: Sequence[LabelledDocument],
    version: str,
    sample_digest: str,
    *,
    c_grid: Sequence[float] = C_GRID,
    folds: int = FOLDS,
) -> Trained:
    from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.model_selection import StratifiedKFold, cross_val_score  # type: ignore[import-untyped]
    from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]

    training = [doc for doc in documents if doc.split == "train"]
    inputs = [(doc.title, doc.text) for doc in training]
    targets = [doc.label for doc in training]

    def pipeline(c: float) -> Any:
        vectorizer = TfidfVectorizer(
            analyzer=_analyzer,
            sublinear_tf=True,
            min_df=MIN_DOCUMENT_FREQUENCY,
            max_features=MAX_FEATURES,
            dtype=numpy.float64,
        )
        return make_pipeline(vectorizer, LogisticRegression(C=c, max_iter=5_000))

    splits = StratifiedKFold(n_splits=folds, shuffle=False)
    cross_validated = {
        c: -float(cross_val_score(pipeline(c), inputs, targets, cv=splits, scoring="neg_log_loss").mean())
        for c in c_grid
    }
    best_c = min(c_grid, key=lambda c: (cross_validated[c], c))
    fitted = pipeline(best_c).fit(inputs, targets)
    vectorizer, classifier = fitted.steps[0][1], fitted.steps[1][1]
    order = [list(classifier.classes_).index(label) for label in LABELS]
    terms: dict[str, list[float]] = {}
    for term, column in sorted(vectorizer.vocabulary_.items()):
        coefficients = [_rounded(classifier.coef_[row][column]) for row in order]
        terms[term] = [_rounded(vectorizer.idf_[column]), *coefficients]
    model = LinearModel(
        format="ccn-linear-classifier/1",
        version=version,
        labels=list(LABELS),
        intercepts=[_rounded(classifier.intercept_[row]) for row in order],
        terms=terms,
        trained_on={
            "sample_sha256": sample_digest,
            "documents": len(training),
            "regularisation_c": best_c,
            "cross_validated_log_loss": round(cross_validated[best_c], 4),
        },
    )
    return Trained(model=model, cross_validated_log_loss=cross_validated)


def _analyzer(document: tuple[str, str]) -> list[str]:
    title, text = document
    return features(title, text)


def _rounded(value: float) -> float:
    return float(f"{float(value):.{COEFFICIENT_DIGITS}g}")


def sample_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def encode_model(model: LinearModel) -> bytes:
    return msgspec.json.format(msgspec.json.encode(model), indent=0) + b"\n"


def heldout_predictions(
    documents: Sequence[LabelledDocument], classify: Callable[[LabelledDocument], str]
) -> tuple[list[str], list[str]]:
    heldout = [doc for doc in documents if doc.split == "heldout"]
    return [doc.label for doc in heldout], [classify(doc) for doc in heldout]
