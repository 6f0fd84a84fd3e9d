"""What `jaxdoctor trace` runs: `pkg.module:fn`, `path/to/file.py:fn` or `path/to/script.py`.

`parse_target` is jax-free and checks what can be checked without importing user code (the file
exists, the names are identifiers). `load_function` / `run_script` run in the child process.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from jaxdoctor.errors import UsageError

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
#: Suffixes of files that are not Python source: `nb.ipynb` must not be read as module `nb`'s
#: submodule `ipynb`.
_NOT_PYTHON = frozenset({
    "ipynb", "txt", "json", "yaml", "yml", "toml", "cfg", "ini", "md", "rst", "sh", "csv", "pyc",
    "pyi", "pyx", "so", "c", "cc", "cpp", "h", "js", "ts", "html", "npz", "npy", "pkl",
})


@dataclass(frozen=True)
class Target:
    kind: str  # "module" (pkg.module:fn), "file" (path.py:fn), "script" (path.py), "run-module" (pkg.mod)
    spec: str  # module name or absolute file path
    function: str | None = None  # attribute path inside the module, e.g. "step" or "Model.apply"

    @property
    def display(self) -> str:
        return f"{self.spec}:{self.function}" if self.function else self.spec

    @property
    def function_name(self) -> str:
        return (self.function or os.path.basename(self.spec)).rsplit(".", 1)[-1]

    def to_json(self) -> dict:
        return {"kind": self.kind, "spec": self.spec, "function": self.function}

    @classmethod
    def from_json(cls, data: dict) -> "Target":
        return cls(data["kind"], data["spec"], data.get("function"))


def parse_target(text: str, *, cwd: str | None = None) -> Target:
    text = text.strip()
    if not text:
        raise UsageError("trace: empty target; expected pkg.module:fn, path/to/file.py:fn or path/to/script.py")
    cwd = cwd or os.getcwd()
    path_part, sep, fn = text.rpartition(":")
    if sep and path_part and not os.path.exists(os.path.join(cwd, text)):
        if not _DOTTED.match(fn):
            raise UsageError(f"trace: {fn!r} in {text!r} is not a function name")
        _check_python_file(path_part, cwd)
        if path_part.endswith(".py") or os.sep in path_part or "/" in path_part:
            return Target("file", _existing_file(path_part, cwd), fn)
        if not _DOTTED.match(path_part):
            raise UsageError(f"trace: {path_part!r} in {text!r} is not a module name")
        return Target("module", path_part, fn)
    _check_python_file(text, cwd)
    if text.endswith(".py") or os.sep in text or "/" in text:
        return Target("script", _existing_file(text, cwd))
    if _DOTTED.match(text):
        return Target("run-module", text)
    raise UsageError(f"trace: cannot understand target {text!r}; expected pkg.module:fn, path/to/file.py:fn or path/to/script.py")


def _check_python_file(path: str, cwd: str) -> None:
    """A usage error for a target that names a notebook, a directory or another non-Python file."""
    full = os.path.join(cwd, os.path.expanduser(path))
    suffix = path.rsplit(".", 1)[-1].lower() if "." in os.path.basename(path) else ""
    if suffix == "ipynb":
        where = "" if os.path.isfile(full) else " (and there is no such file)"
        raise UsageError(
            f"trace: {path} is a notebook{where}; `jaxdoctor trace` runs Python files and modules. "
            f"Export it first (`jupyter nbconvert --to script {path}`) and trace the .py file, "
            "or check the notebook statically with `jaxdoctor lint`"
        )
    if os.path.isdir(full) and not os.path.isfile(os.path.join(full, "__main__.py")):
        raise UsageError(f"trace: {path} is a directory; give path/to/file.py, path/to/file.py:fn or pkg.module:fn")
    if suffix in _NOT_PYTHON or (os.path.isfile(full) and suffix and suffix != "py"):
        raise UsageError(f"trace: {path} is not a Python file (.py); give path/to/file.py, path/to/file.py:fn "
                         "or pkg.module:fn")


def _existing_file(path: str, cwd: str) -> str:
    full = os.path.abspath(os.path.join(cwd, os.path.expanduser(path)))
    if not os.path.isfile(full):
        raise UsageError(f"trace: no such file: {path}")
    return full


# ---------------------------------------------------------------- child side


def missing_module(target: Target) -> str | None:
    """Why the module of a `pkg.module:fn` or `pkg.module` target cannot be found (a usage
    error), or None. A module that is found but fails while importing is the program's error."""
    import importlib.util
    import sys

    if target.kind not in ("module", "run-module"):
        return None
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    missing = target.spec
    try:
        spec = importlib.util.find_spec(target.spec)
    except ModuleNotFoundError as exc:
        missing = exc.name or target.spec
        if not (target.spec == missing or target.spec.startswith(missing + ".")):
            return None  # the package itself imports something missing: the program's error
        spec = None
    except Exception:  # noqa: BLE001 - a parent package raised while importing: the program's error
        return None
    if spec is not None:
        return None
    return (f"trace: no module named {missing!r} (from target {target.display!r}) in {os.getcwd()} or on "
            "sys.path; run jaxdoctor from the directory that holds it, install its package, or give "
            "a file: path/to/file.py:fn")


def import_target_module(target: Target) -> Any:
    """Import the module that holds `target.function` (its `__main__` block does not run)."""
    import importlib
    import importlib.util
    import sys

    if target.kind == "module":
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        return importlib.import_module(target.spec)
    path = target.spec
    directory = os.path.dirname(path)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    name = os.path.splitext(os.path.basename(path))[0]
    if not name.isidentifier():
        name = "_jaxdoctor_target"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def resolve_function(module: Any, target: Target) -> Any:
    obj = module
    for part in (target.function or "").split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise LookupError(f"{target.spec} has no attribute {target.function!r}") from None
    if not callable(obj):
        raise LookupError(f"{target.display} is not callable")
    return obj
