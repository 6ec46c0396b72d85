"""Every import a job type makes inside a function is one the node loads before forking a
child per job (ccn_jobs.lazy_imports), so no child pays for loading it on its own."""

from __future__ import annotations

import ast
from pathlib import Path

import ccn_jobs
from ccn_jobs.lazy_imports import LAZY_IMPORTS

# offline tools in the package that no job type runs on a node
NOT_RUN_BY_JOBS = frozenset({"classifier_training.py"})


def imports_inside_functions(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Import):
                found.update(alias.name.split(".")[0] for alias in inner.names)
            elif isinstance(inner, ast.ImportFrom) and inner.module and inner.level == 0:
                found.add(inner.module.split(".")[0])
            elif (
                isinstance(inner, ast.Call)
                and isinstance(inner.func, ast.Attribute)
                and inner.func.attr == "import_module"
                and inner.args
                and isinstance(inner.args[0], ast.Constant)
                and isinstance(inner.args[0].value, str)
            ):
                found.add(inner.args[0].value.split(".")[0])
    return found


def test_the_lazy_imports_list_names_every_import_made_inside_a_job_function() -> None:
    package = Path(ccn_jobs.__file__).parent
    modules = [path for path in package.glob("*.py") if path.name not in NOT_RUN_BY_JOBS]
    lazy = set().union(*(imports_inside_functions(path.read_text()) for path in modules))
    lazy -= {"importlib", "ccn_jobs", "ccn_proto", "ccn_core"}
    assert lazy <= set(LAZY_IMPORTS), (
        f"imported inside functions but not in LAZY_IMPORTS: {sorted(lazy - set(LAZY_IMPORTS))}"
    )


def test_the_finder_sees_imports_inside_functions_only() -> None:
    source = (
        "import os\ndef f():\n    import trafilatura\n    from docx import x\n    importlib.import_module('pymupdf')\n"
    )
    assert imports_inside_functions(source) == {"trafilatura", "docx", "pymupdf"}
