"""Good results of every registered job type: each type's handler run on its own sample payloads,
as the plain dicts a node submits. Shared by the validation tests and the `validation` bench
group. Computed once per process and type (extract_text and parse_pdf load their parsers)."""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

from ccn_jobs.registry import JOB_TYPES, result_to_builtins

_STEP = re.compile(r"([a-z_][a-z0-9_]*)|\[(\d+)\]")


@functools.cache
def _good_results(job_type: str) -> tuple[dict[str, Any], ...]:
    job = JOB_TYPES[job_type]
    return tuple(result_to_builtins(job.handler(payload)) for payload in job.sample_payloads)


def good_results(job_type: str) -> list[dict[str, Any]]:
    """Fresh copies: a test may change them."""
    return copy.deepcopy(list(_good_results(job_type)))


DELETE = object()


def changed(result: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `result` with the value at `path` ("entities[2].value", "links") set to `value`,
    or removed when `value` is DELETE."""
    changed_result = copy.deepcopy(result)
    steps: list[str | int] = [name if name else int(index) for name, index in _STEP.findall(path)]
    target: Any = changed_result
    for step in steps[:-1]:
        target = target[step]
    if value is DELETE:
        del target[steps[-1]]
    else:
        target[steps[-1]] = value
    return changed_result
