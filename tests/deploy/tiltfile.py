"""The Tiltfile evaluated by a Starlark interpreter (starlark-pyo3, starlark-rust underneath) with
Tilt's builtins stubbed: each stub records its call, so a test can assert what resources the
Tiltfile declares in each mode without Tilt, Docker or a cluster."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import starlark as sl

from tests.deploy.rendered import ROOT

TILT_BUILTINS = (
    "allow_k8s_contexts",
    "docker_build",
    "fall_back_on",
    "http_get_action",
    "k8s_resource",
    "k8s_yaml",
    "kustomize",
    "link",
    "local_resource",
    "probe",
    "sync",
    "watch_settings",
)
EXTENSIONS = {
    "ext://restart_process": ("docker_build_with_restart",),
    "ext://helm_resource": ("helm_repo", "helm_resource"),
}


@dataclass
class Call:
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass
class TiltRun:
    flags: dict[str, bool]
    calls: list[Call] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)

    def of(self, name: str) -> list[Call]:
        return [call for call in self.calls if call.name == name]

    def resource(self, name: str, kind: str) -> Call:
        (found,) = [
            call for call in self.of(kind) if (call.args[0] if call.args else call.kwargs.get("new_name")) == name
        ]
        return found


def _recorder(run: TiltRun, name: str) -> Any:
    def record(*args: Any, **kwargs: Any) -> dict[str, Any]:
        run.calls.append(Call(name, args, kwargs))
        return {"builtin": name, "args": list(args), "kwargs": kwargs}

    return record


def tilt_dialect() -> sl.Dialect:
    """Tilt's Starlark (starlark-go as Tilt sets it up): `if` and `for` at the top level, no
    f-strings, no type annotations."""
    dialect = sl.Dialect.standard()
    dialect.enable_top_level_stmt = True
    dialect.enable_lambda = True
    dialect.enable_load = True
    return dialect


def evaluate(flags: dict[str, bool]) -> TiltRun:
    """Evaluate the root Tiltfile as `tilt up -- <flags>` would."""
    run = TiltRun(flags)
    globals_ = sl.Globals.extended_by([sl.LibraryExtension.StructType])

    def module_with_stubs() -> sl.Module:
        module = sl.Module()
        for name in TILT_BUILTINS:
            module.add_callable(name, _recorder(run, name))
        module.add_callable("_define_bool", _recorder(run, "config.define_bool"))
        module.add_callable("_parse", lambda: dict(run.flags))
        module.add_callable("_join", lambda *parts: os.path.join(*parts))
        module.add_callable("load_dynamic", load_dynamic)
        module["_main_dir"] = str(ROOT)
        prelude = (
            "config = struct(define_bool = _define_bool, parse = _parse, main_dir = _main_dir)\n"
            "os = struct(path = struct(join = _join))\n"
        )
        sl.eval(module, sl.parse("prelude", prelude), globals_)
        return module

    def evaluate_file(path: Path) -> sl.FrozenModule:
        run.loaded.append(str(path.relative_to(ROOT)))
        module = module_with_stubs()

        def load(spec: str) -> sl.FrozenModule:
            if spec in EXTENSIONS:
                extension = sl.Module()
                for name in EXTENSIONS[spec]:
                    extension.add_callable(name, _recorder(run, name))
                run.loaded.append(spec)
                return extension.freeze()
            return evaluate_file((path.parent / spec).resolve())

        sl.eval(module, sl.parse(str(path), path.read_text(), tilt_dialect()), globals_, sl.FileLoader(load))
        return module.freeze()

    def load_dynamic(relative: str) -> dict[str, Any]:
        evaluate_file(ROOT / relative)
        return {}

    evaluate_file(ROOT / "Tiltfile")
    return run
