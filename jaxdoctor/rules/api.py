"""Removed, deprecated and legacy APIs of jax, flax, equinox and optax (JD401 / JD402 / JD403).

The knowledge lives in `jaxdoctor/data/deprecations.toml` (torchfix's `deprecated_symbols.yaml`
habit): symbol, replacement, deprecated-in, removed-in, legacy-since, fix. It is read once per process and
never imports the libraries it describes. Each entry is judged against the run's target version
of its package (`ctx.options["target-jax-version"]`, ...: config, else the project's pin, else
the newest release the table knows).

Where a name is reported: at the import for `from jax import tree_map` / `import
jax.experimental.host_callback as hcb` (not again at every use of the imported name), and at
each use for attribute spellings such as `jax.tree_map(...)`.
"""

from __future__ import annotations

import functools
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import libcst as cst

from jaxdoctor.findings import Applicability, Severity
from jaxdoctor.static.names import canonical, dotted_parts
from jaxdoctor.static.options import version_key
from jaxdoctor.static.walker import iter_tree
from jaxdoctor.static.rule import LintRule, NodeFix

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TABLE_PATH = Path(__file__).resolve().parent.parent / "data" / "deprecations.toml"
_FIXES = ("rename", "template", "none")


@dataclass(frozen=True, slots=True)
class ApiEntry:
    symbol: str
    package: str
    replacement: str
    module: bool = False
    deprecated: str | None = None
    removed: str | None = None
    #: first release whose docs recommend `replacement` over a still-supported API (JD403)
    legacy: str | None = None
    fix: str = "none"
    safety: Applicability = Applicability.UNSAFE
    template: str | None = None
    template_args: int | None = None
    compat: str | None = None
    replacement_since: str | None = None
    note: str | None = None

    def status(self, target: str) -> str | None:
        """"removed", "deprecated", "legacy" or None (fine) at version `target`."""
        t = version_key(target)
        if self.removed is not None and version_key(self.removed) <= t:
            return "removed"
        if self.deprecated is not None and version_key(self.deprecated) <= t:
            return "deprecated"
        if self.legacy is not None and version_key(self.legacy) <= t:
            return "legacy"
        return None

    def replacement_for(self, target: str) -> str:
        """The replacement that exists at `target` (`compat` before `replacement-since`)."""
        if self.compat and self.replacement_since and version_key(target) < version_key(self.replacement_since):
            return self.compat
        return self.replacement


@dataclass(frozen=True, slots=True)
class ApiTable:
    entries: dict[str, ApiEntry]
    current: dict[str, str]

    def lookup(self, qualname: str) -> ApiEntry | None:
        """The entry for `qualname`: itself, or the module entry it lies in (longest first)."""
        entry = self.entries.get(qualname)
        if entry is not None:
            return entry
        parts = qualname.split(".")
        for n in range(len(parts) - 1, 1, -1):
            entry = self.entries.get(".".join(parts[:n]))
            if entry is not None and entry.module:
                return entry
        return None


@functools.cache
def load_table(path: Path = TABLE_PATH) -> ApiTable:
    """Read and validate the table once per process."""
    with path.open("rb") as f:
        data = tomllib.load(f)
    current = {str(k): str(v) for k, v in data.get("current", {}).items()}
    entries: dict[str, ApiEntry] = {}
    for raw in data.get("api", []):
        symbol = raw["symbol"]
        if symbol in entries:
            raise ValueError(f"{path}: duplicate entry {symbol}")
        fix = raw.get("fix", "none")
        if fix not in _FIXES:
            raise ValueError(f"{path}: {symbol}: fix must be one of {_FIXES}")
        if raw["package"] not in current:
            raise ValueError(f"{path}: {symbol}: unknown package {raw['package']!r}")
        if "deprecated" not in raw and "removed" not in raw and "legacy" not in raw:
            raise ValueError(f"{path}: {symbol}: needs deprecated, removed or legacy")
        if "legacy" in raw and ("deprecated" in raw or "removed" in raw):
            raise ValueError(f"{path}: {symbol}: a legacy API is neither deprecated nor removed")
        if "verified" not in raw:
            raise ValueError(f"{path}: {symbol}: say where the versions were checked (verified = ...)")
        if fix == "template" and not raw.get("template"):
            raise ValueError(f"{path}: {symbol}: fix = template needs a template")
        entries[symbol] = ApiEntry(
            symbol=symbol,
            package=raw["package"],
            replacement=raw["replacement"],
            module=bool(raw.get("module", False)),
            deprecated=raw.get("deprecated"),
            removed=raw.get("removed"),
            legacy=raw.get("legacy"),
            fix=fix,
            safety=Applicability(raw.get("safety", "unsafe")),
            template=raw.get("template"),
            template_args=raw.get("template-args"),
            compat=raw.get("compat"),
            replacement_since=raw.get("replacement-since"),
            note=raw.get("note"),
        )
    return ApiTable(entries, current)


def _is_qualified(text: str) -> bool:
    return re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+", text) is not None


_MISSING_ERRORS = frozenset({"builtins.ImportError", "builtins.ModuleNotFoundError", "builtins.AttributeError",
                             "builtins.Exception"})


def _catches_missing(handler: cst.ExceptHandler, names) -> bool:
    """`except ImportError:` (or a tuple with it, or a bare `except:`)."""
    if handler.type is None:
        return True
    types = [el.value for el in handler.type.elements] if isinstance(handler.type, cst.Tuple) else [handler.type]
    return any(names.qualname(t) in _MISSING_ERRORS for t in types)


def _version_test(test: cst.BaseExpression, names) -> bool:
    """`hasattr(jax, "tree_map")`, `jax.__version__ < "0.4.30"`, `version.parse(...) >= ...`."""
    for node in iter_tree(test):
        if isinstance(node, cst.Call) and names.qualname(node.func) == "builtins.hasattr":
            return True
        if isinstance(node, cst.Attribute) and node.attr.value in ("__version__", "__version_info__"):
            return True
        if isinstance(node, cst.Name) and node.value in ("__version__",):
            return True
    return False


class _ApiRule(LintRule):
    """Shared matching; subclasses pick the status they report."""

    status: str = ""

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.table = load_table()
        self._in_import = 0

    # ------------------------------------------------------------ helpers
    def _target(self, package: str) -> str:
        return self.ctx.options.get(f"target-{package}-version") or self.table.current[package]

    def _spell(self, qualified: str) -> str | None:
        """`qualified` written with the file's imports (`jax.tree.map`, `jnp.vstack`), or None."""
        best: tuple[int, str] | None = None
        for local, target in self.ctx.names.aliases.items():
            if qualified == target or qualified.startswith(target + "."):
                if best is None or len(target) > best[0]:
                    best = (len(target), local + qualified[len(target):])
        return best[1] if best else None

    def _render_template(self, entry: ApiEntry, call: cst.Call) -> str | None:
        args = list(call.args)
        if entry.template_args is not None:
            if len(args) != entry.template_args or any(a.keyword or a.star for a in args):
                return None
        code = self.ctx.module.code_for_node
        text = entry.template or ""
        for i, arg in enumerate(args):
            text = text.replace("{%d}" % i, code(arg.value))
        all_args = ", ".join(code(a).strip().rstrip(",").strip() for a in args)
        text = text.replace("{, args}", (", " + all_args) if all_args else "")
        text = text.replace("{args}", all_args)
        if re.search(r"\{\d+\}", text):
            return None
        for name in set(re.findall(r"@([A-Za-z_][\w.]*)", text)):
            spelled = self._spell(name)
            if spelled is None:
                return None
            text = text.replace("@" + name, spelled)
        return text

    def _message(self, entry: ApiEntry, shown: str, target: str) -> tuple[str, str]:
        replacement = entry.replacement_for(target)
        code_like = not replacement.startswith("`") and " " not in replacement
        use = f"`{replacement}`" if code_like else replacement
        pkg = entry.package
        if self.status == "legacy":
            note = f"; {entry.note}" if entry.note else ""
            return (f"`{shown}` is a legacy API: {pkg} recommends {use} since {entry.legacy} (target "
                    f"{pkg} {target}){note}", f"Use {use} (review: not a drop-in replacement)")
        if entry.removed is not None and self.status == "removed":
            what = f"was removed in {pkg} {entry.removed}"
        elif entry.removed is not None:
            what = f"is deprecated since {pkg} {entry.deprecated} and removed in {entry.removed}"
        else:
            what = f"is deprecated since {pkg} {entry.deprecated}"
        kind = "module " if entry.module else ""
        note = f" ({entry.note})" if entry.note else ""
        return (f"{kind}`{shown}` {what} (target {pkg} {target}); use {use} instead{note}",
                f"Use {use}")

    def _fix(self, entry: ApiEntry, node: cst.CSTNode, target: str, title: str) -> NodeFix | None:
        if entry.fix == "rename" and isinstance(node, cst.Attribute):
            new = entry.replacement_for(target)
            if entry.module or not _is_qualified(new):
                return None
            old_parent, _, _ = entry.symbol.rpartition(".")
            new_parent, _, new_last = new.rpartition(".")
            if old_parent == new_parent:
                text = self.ctx.module.code_for_node(node.value) + "." + new_last
            else:
                text = self._spell(new)
            if text is None:
                return None
            return NodeFix(((node, text),), title, entry.safety)
        if entry.fix == "template":
            parent = self.ctx.parent
            if isinstance(parent, cst.Call) and parent.func is node:
                text = self._render_template(entry, parent)
                if text is not None:
                    return NodeFix(((parent, text),), title, entry.safety)
        return None

    def _version_guarded(self) -> bool:
        """The current node only runs on versions that have the API, by the code's own test: in
        the `except ImportError:`/`AttributeError` fallback of a compatibility import, in the
        `try` of one (a removed API fails there and falls back), or under `if hasattr(...)` /
        a `__version__` comparison."""
        anc = self.ctx.ancestors
        for i, node in enumerate(anc):
            child = anc[i + 1] if i + 1 < len(anc) else None
            if isinstance(node, cst.ExceptHandler) and _catches_missing(node, self.ctx.names):
                return True
            if (isinstance(node, cst.Try) and child is node.body and self.status == "removed"
                    and any(_catches_missing(h, self.ctx.names) for h in node.handlers)):
                return True
            if isinstance(node, (cst.If, cst.IfExp)) and _version_test(node.test, self.ctx.names):
                return True
        return False

    def _check(self, node: cst.CSTNode, qualname: str, shown: str, fix_node: cst.CSTNode | None) -> None:
        entry = self.table.lookup(qualname)
        if entry is None or self._version_guarded():
            return
        target = self._target(entry.package)
        if entry.status(target) != self.status:
            return
        message, title = self._message(entry, shown, target)
        fix = self._fix(entry, fix_node, target, title) if fix_node is not None else None
        self.report(node, message, fix=fix, fix_title=title)

    # ------------------------------------------------------------ visitors
    def visit_Attribute(self, node: cst.Attribute) -> None:
        if self._in_import:
            return
        parent = self.ctx.parent
        if isinstance(parent, cst.Attribute) and parent.value is node:
            return  # only the whole dotted chain
        parts = dotted_parts(node)
        if parts is None:
            return
        base = self.ctx.names.aliases.get(parts[0])
        if base is None:
            return
        q = self.ctx.qualname(node)
        if q is None:
            return
        entry = self.table.lookup(q)
        if entry is None or base == entry.symbol or base.startswith(entry.symbol + "."):
            return  # reported at the import that binds `parts[0]`
        inside = self.table.lookup(base)
        if inside is not None and inside.module:
            return  # `from jax.lib import xla_bridge`: reported at that import, not per use
        self._check(node, q, entry.symbol if entry.module else q, node)

    def visit_Import(self, node: cst.Import) -> None:
        self._in_import += 1
        for alias in node.names:
            parts = dotted_parts(alias.name)
            if parts:
                q = canonical(".".join(parts))
                entry = self.table.lookup(q)
                if entry is not None:
                    self._check(alias, q, entry.symbol if entry.module else q, None)

    def leave_Import(self, node: cst.Import) -> None:
        self._in_import -= 1

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self._in_import += 1
        if node.relative or node.module is None or isinstance(node.names, cst.ImportStar):
            return
        parts = dotted_parts(node.module)
        if not parts:
            return
        module = ".".join(parts)
        for alias in node.names:
            if not isinstance(alias.name, cst.Name):
                continue
            q = canonical(f"{module}.{alias.name.value}")
            entry = self.table.lookup(q)
            if entry is None:
                continue
            target = self._target(entry.package)
            if entry.status(target) != self.status or self._version_guarded():
                continue
            message, title = self._message(entry, entry.symbol if entry.module else q, target)
            self.report(alias, message, fix=self._import_fix(entry, node, alias, target, title), fix_title=title)

    def leave_ImportFrom(self, node: cst.ImportFrom) -> None:
        self._in_import -= 1

    def _import_fix(self, entry: ApiEntry, node: cst.ImportFrom, alias: cst.ImportAlias,
                    target: str, title: str) -> NodeFix | None:
        """`from jax import tree_map` → `from jax.tree_util import tree_map` (one name only; not
        for a legacy API, whose new name would hide behind the old one: `import key as PRNGKey`)."""
        if entry.fix != "rename" or entry.module or len(node.names) != 1 or self.status == "legacy":
            return None
        new = entry.compat or entry.replacement_for(target)
        if not _is_qualified(new):
            return None
        new_module, _, new_name = new.rpartition(".")
        local = alias.asname.name.value if alias.asname is not None and isinstance(alias.asname.name, cst.Name) else alias.name.value
        suffix = "" if local == new_name else f" as {local}"
        return NodeFix(((node, f"from {new_module} import {new_name}{suffix}"),), title, entry.safety)


class RemovedApi(_ApiRule):
    code = "JD401"
    name = "removed-api"
    severity = Severity.ERROR
    summary = "API removed in the target version of jax/flax/equinox/optax (table in `jaxdoctor/data/`)"
    fix_title = "Use the replacement named in the message"
    trace_fix_title = "Use the replacement API (e.g. `jax.tree.map` for `jax.tree_map`)"
    fix_applicability = Applicability.SAFE
    status = "removed"


class DeprecatedApi(_ApiRule):
    code = "JD402"
    name = "deprecated-api"
    severity = Severity.WARNING
    summary = "API deprecated in the target version of jax/flax/equinox/optax (table in `jaxdoctor/data/`)"
    fix_title = "Use the replacement named in the message"
    fix_applicability = Applicability.SAFE
    status = "deprecated"


class LegacyApi(_ApiRule):
    code = "JD403"
    name = "legacy-api"
    severity = Severity.INFO
    summary = "Legacy API with a recommended replacement that behaves differently (`jax.random.PRNGKey` → `jax.random.key`)"
    fix_title = "Use the replacement named in the message"
    fix_applicability = Applicability.UNSAFE
    #: off by default: the legacy API still works and is supported; switching is a migration
    #: (typed keys are not uint32 arrays), not a bug fix
    default_enabled = False
    status = "legacy"
