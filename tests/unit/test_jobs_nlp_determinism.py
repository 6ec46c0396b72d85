"""classify_document and extract_entities give byte-identical results in another process, with
another hash seed, time zone and locale: what lets several nodes' results be compared by checksum."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from typing import Any

import msgspec

from ccn_jobs.registry import result_to_builtins, run_job

# Run in this process and in a fresh one; the module is its own script.
SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from tests.unit.test_jobs_nlp_determinism import digest
print(digest())
"""

MANY_SCRIPTS = [
    "资助申请截止日期为2027年3月14日。本基金会支持社区艺术项目\uff0c最高50,000元。",
    "آخر موعد للتقديم ١٤ مارس ٢٠٢٧. المنحة تصل إلى ‎$5,000",
    "Крайний срок — 14 марта 2027 года. Фонд «Северный мост» выдаёт гранты до 100 000 рублей.",
    "\u202eevil\u202c e\u0301\u0301 🎉 Deadline: 14 March 💷 £5,000 from the Kestrel Trust",
]


def jobs() -> list[tuple[str, dict[str, Any]]]:
    from ccn_jobs.classifier_training import read_sample
    from ccn_jobs.nlp_corpus import ENTITY_EVAL_PATH, SAMPLE_PATH, EntityDocument

    sample = [doc for doc in read_sample(SAMPLE_PATH) if doc.split == "heldout"][::7]
    entity_docs = [
        msgspec.json.decode(line, type=EntityDocument) for line in ENTITY_EVAL_PATH.read_bytes().splitlines()
    ]
    found: list[tuple[str, dict[str, Any]]] = [
        ("classify_document", {"text": doc.text, "title": doc.title, **({"url": doc.url} if doc.url else {})})
        for doc in sample
    ]
    found += [("extract_entities", {"text": d.text, "reference_date": d.reference_date}) for d in entity_docs[::4]]
    for text in MANY_SCRIPTS:
        found += [
            ("classify_document", {"text": text}),
            ("extract_entities", {"text": text, "reference_date": "2026-12-01"}),
        ]
    return found


def digest() -> str:
    """SHA-256 over every result's canonical bytes, in order."""
    hasher = hashlib.sha256()
    for job_type, payload in jobs():
        hasher.update(msgspec.json.encode(result_to_builtins(run_job(job_type, payload)), order="sorted") + b"\n")
    return hasher.hexdigest()


def test_results_are_byte_identical_in_another_process() -> None:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONHASHSEED": "12345", "TZ": "Pacific/Kiritimati", "LC_ALL": "C", "LANG": "C"}
    other = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(root=root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert other.stdout.strip() == digest()
    assert len(jobs()) > 40
