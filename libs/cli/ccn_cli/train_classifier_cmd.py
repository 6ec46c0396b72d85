"""`ccn jobs train-classifier`: train classify_document's model from the labelled sample kept in
the repository and write it as the JSON file the job loads; then score the held-out split.

`ccn jobs check-rules FILE` checks a rules file an administrator has written (the form of
ccn_jobs/data/classify_rules.json) before it is shipped or put in a job's payload."""

from __future__ import annotations

import argparse
from pathlib import Path

import msgspec

from ccn_cli.console import fail, say
from ccn_cli.subcommand import Subparsers
from ccn_core.settings import Settings
from ccn_jobs.document_classifier import LABELS, MODEL_PATH, LinearModel, load_rules, shipped_rules
from ccn_jobs.nlp_corpus import SAMPLE_PATH, LabelledDocument


def register(actions: Subparsers) -> None:
    train = actions.add_parser(
        "train-classifier",
        help="train classify_document's model from the labelled sample and write it as JSON",
        description="Trains on the sample's `train` split only (the regularisation chosen by cross-validation "
        "inside it), writes the model, then reports accuracy and per-class precision and recall on the "
        "`heldout` split. Needs scikit-learn (installed by `make setup`); nodes do not.",
    )
    train.add_argument(
        "--sample", type=Path, default=SAMPLE_PATH, help="labelled JSON lines (default: the shipped one)"
    )
    train.add_argument(
        "--out", type=Path, default=MODEL_PATH, help="where to write the model (default: the shipped one)"
    )
    train.add_argument("--version", required=True, help="the model version results will carry, e.g. 2026-12-06.1")
    train.set_defaults(run=run_train)

    check = actions.add_parser("check-rules", help="check a classify_document rules file")
    check.add_argument("file", type=Path, metavar="RULES.json")
    check.set_defaults(run=run_check_rules)


def run_train(args: argparse.Namespace, settings: Settings) -> int:
    try:
        from ccn_jobs.classifier_training import encode_model, read_sample, sample_digest, train
    except ImportError as exc:  # scikit-learn is a development dependency
        fail(f"training needs scikit-learn ({exc}); run `make setup`")
        return 1
    from ccn_jobs.document_classifier import load_model

    try:
        documents = read_sample(args.sample)
        say(f"training on {sum(d.split == 'train' for d in documents)} documents of {args.sample}")
        trained = train(documents, args.version, sample_digest(args.sample))
        encoded = encode_model(trained.model)
        model = load_model(encoded)  # what a node will load: refuse to write a file it would refuse
    except (OSError, ValueError) as exc:  # msgspec.ValidationError is a ValueError
        fail(str(exc))
        return 1
    for c, loss in trained.cross_validated_log_loss.items():
        say(f"  C={c:g}: cross-validated log loss {loss:.4f}")
    args.out.write_bytes(encoded)
    say(f"wrote {args.out} ({len(encoded)} bytes, {len(model.terms)} terms)")
    _report_heldout(documents, model)
    return 0


def _report_heldout(documents: list[LabelledDocument], model: LinearModel) -> None:
    from ccn_jobs.classify_document import ClassifyDocumentPayload, classify_with
    from ccn_jobs.nlp_metrics import classification_scores

    heldout = [d for d in documents if d.split == "heldout"]
    predicted = [
        classify_with(model, shipped_rules(), ClassifyDocumentPayload(text=d.text, title=d.title, url=d.url)).label
        for d in heldout
    ]
    scores = classification_scores([d.label for d in heldout], predicted, LABELS)
    say(f"held out ({len(heldout)} documents): accuracy {scores.accuracy:.3f}")
    for label in scores.per_class:
        say(f"  {label.name:18} precision {label.precision:.3f}  recall {label.recall:.3f}  n={label.support}")


def run_check_rules(args: argparse.Namespace, settings: Settings) -> int:
    try:
        rules = load_rules(args.file.read_bytes())
    except OSError as exc:
        fail(str(exc))
        return 1
    except msgspec.DecodeError as exc:
        fail(f"{args.file}: {exc}")
        return 1
    say(f"{args.file}: version {rules.version}, {len(rules.rules)} rules")
    return 0
