"""The layer table of docs/architecture.md, checked over every import in hilrl/.

``LAYERS`` below is the one place that states the order (docs/architecture.md points
here). A module may import its own package and any package in a lower row; packages that
share a row are siblings and may not import each other. Every import statement counts:
at module level, inside functions, and under ``if TYPE_CHECKING:`` (a type-only import
upward is still a lower layer naming a concept of a higher one; move the type down
instead). A string literal naming a hilrl module counts too in a module that calls
``importlib.import_module``, so lazy re-export tables are covered.

Run alone: ``.venv/bin/python tests/architecture/test_layers.py`` prints one line per
violation, ``path:line: importer imports target (...)``, and exits 1 if there is any.

Imports inside functions hide dependencies, so each one says why it is there: a comment
``# optional: ...`` (keeps an optional dependency optional) or ``# start-up: ...`` (keeps
start-up fast) on its line, or on the line above the first import of its block.
"""

from __future__ import annotations

import ast
import shutil
import sys
import textwrap
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

LAYERS: tuple[tuple[str, ...], ...] = (
    # bottom: leaf helpers that import nothing else of hilrl (and the package root,
    # which holds only __version__); siblings, so none imports another
    (
        "hilrl",
        "hilrl.fsutil",
        "hilrl.pacing",
        "hilrl.architecture",
        "hilrl.seeds",
        "hilrl.devices",
    ),
    ("hilrl.types",),
    ("hilrl.core",),
    ("hilrl.kinematics",),  # below config: EnvConfig.validate checks joints against the chain
    ("hilrl.config",),
    ("hilrl.robots",),
    ("hilrl.teleop",),
    ("hilrl.envs",),  # above teleop: make_env takes the operator's InputController
    ("hilrl.data",),
    ("hilrl.policies",),
    ("hilrl.algorithms",),
    ("hilrl.rewards",),
    ("hilrl.transport",),
    ("hilrl.runtime",),
    ("hilrl.cli",),
    # top
)
"""Packages (and leaf modules) of hilrl, bottom up."""

ALLOWED: dict[tuple[str, str], str] = {
    # (importing module, imported package): why it is tolerated for now. Each entry must
    # still match an import (a stale entry fails the test), so it goes when the fix lands.
    ("hilrl.data.replay", "hilrl.policies"): (
        "ObservationSpec: moves to hilrl.types once hilrl/policies/encoder.py (being "
        "rewritten) re-exports it from there; then import it from hilrl.types"
    ),
    ("hilrl.data.mixer", "hilrl.policies"): "ObservationSpec, as for hilrl.data.replay",
}
"""Temporary exceptions, each with the reason and what removes it."""


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    importer: str
    target: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.target} ({self.why})"


def module_name(path: Path, src_root: Path) -> str:
    parts = list(path.relative_to(src_root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(tree: ast.Module, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of everything ``module`` imports, wherever the statement is.

    ``from a import b`` yields ``a.b`` (which resolves to the module ``a.b`` when there is
    one and to the package ``a`` otherwise); relative imports are made absolute.
    """
    package = module if is_package else module.rpartition(".")[0]
    calls_import_module = any(
        isinstance(n, ast.Attribute | ast.Name)
        and (getattr(n, "attr", None) or getattr(n, "id", None)) in ("import_module", "__import__")
        for n in ast.walk(tree)
    )
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                yield node.lineno, f"{source}.{alias.name}"
        elif (
            calls_import_module
            and isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.isidentifier() is False
            and node.value.replace(".", "_").isidentifier()
        ):
            yield node.lineno, node.value


def layer_of(name: str, layers: Sequence[Sequence[str]]) -> tuple[int, str] | None:
    """(row, package) of a dotted module name: the longest table entry that is a prefix."""
    best: tuple[int, str] | None = None
    for row, packages in enumerate(layers):
        for package in packages:
            inside = name == package or (name.startswith(package + ".") and package.count(".") > 0)
            if inside and (best is None or len(package) > len(best[1])):
                best = (row, package)
    return best


def check_layers(
    src_root: Path,
    top_package: str,
    layers: Sequence[Sequence[str]],
    allowed: Iterable[tuple[str, str]] = (),
) -> tuple[list[Violation], set[tuple[str, str]]]:
    """Every import under ``src_root/top_package`` that breaks ``layers``, and the
    ``allowed`` entries that were used (the rest are stale)."""
    allowed = set(allowed)
    used: set[tuple[str, str]] = set()
    violations: list[Violation] = []
    for path in sorted((src_root / top_package).rglob("*.py")):
        module = module_name(path, src_root)
        rel = path.relative_to(src_root).as_posix()
        here = layer_of(module, layers)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, name in imported_names(tree, module, path.name == "__init__.py"):
            if name != top_package and not name.startswith(top_package + "."):
                continue
            name = _importable(name, src_root)
            there = layer_of(name, layers)
            if here is None:
                why = f"{module} is in no layer of the table"
            elif there is None:
                why = f"{name} is in no layer of the table"
            elif here[1] == there[1] or there[0] < here[0]:
                continue
            elif there[0] == here[0]:
                why = f"{here[1]} and {there[1]} are siblings in one layer"
            else:
                why = f"{there[1]} is above {here[1]}"
            key = (module, there[1] if there else name)
            if key in allowed:
                used.add(key)
                continue
            violations.append(Violation(rel, line, module, name, why))
    return violations, used


def _importable(name: str, src_root: Path) -> str:
    """``a.b.c`` when it is a module, else the package part of a ``from a.b import c``."""
    path = src_root / Path(*name.split("."))
    if path.with_suffix(".py").exists() or (path / "__init__.py").exists():
        return name
    return name.rpartition(".")[0] or name


LOCAL_IMPORT_REASONS = ("# optional:", "# start-up:")

UNEXPLAINED_LOCAL_IMPORTS_ALLOWED: dict[str, str] = {
    "hilrl/policies/encoder.py": (
        "ObservationEncoder.__init__ imports hilrl.policies.backbones (3 ms, no cycle): to "
        "move to the top when the file's rewrite lands"
    ),
}
"""Files that may still hold unexplained function-local imports, each with the reason."""


def unexplained_local_imports(src_root: Path, top_package: str) -> list[str]:
    """``path:line: statement`` of every import inside a function without a reason comment."""
    found = []
    for path in sorted((src_root / top_package).rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines), filename=str(path))
        starts: set[int] = set()
        covered: set[int] = set()  # lines of those imports, multi-line ones included
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                for n in ast.walk(fn):
                    if isinstance(n, ast.Import | ast.ImportFrom):
                        starts.add(n.lineno)
                        covered |= set(range(n.lineno, (n.end_lineno or n.lineno) + 1))
        for line in sorted(starts):
            first = line  # the first import of its block (blank lines between groups too)
            while first > 1 and (first - 1 in covered or not lines[first - 2].strip()):
                first -= 1
            above = lines[first - 2] if first > 1 else ""
            here = lines[line - 1]
            if not any(r in here or r in above for r in LOCAL_IMPORT_REASONS):
                rel = path.relative_to(src_root).as_posix()
                found.append(f"{rel}:{line}: {here.strip()}")
    return found


def hilrl_violations() -> tuple[list[Violation], set[tuple[str, str]]]:
    return check_layers(REPO, "hilrl", LAYERS, ALLOWED)


def test_hilrl_imports_point_down_the_layer_table() -> None:
    violations, _ = hilrl_violations()
    assert not violations, "upward imports:\n" + "\n".join(map(str, violations))


def test_every_allowed_upward_import_still_exists() -> None:
    _, used = hilrl_violations()
    stale = sorted(set(ALLOWED) - used)
    assert not stale, f"these ALLOWED entries match no import any more; delete them: {stale}"


def test_every_hilrl_package_has_a_layer() -> None:
    src = REPO / "hilrl"
    tops = {f"hilrl.{p.stem}" for p in src.glob("*.py") if p.stem != "__init__"}
    tops |= {f"hilrl.{p.parent.name}" for p in src.glob("*/__init__.py")}
    named = {package for row in LAYERS for package in row}
    assert tops <= named, f"add these to LAYERS: {sorted(tops - named)}"


def test_checker_fails_on_an_upward_import_added_to_hilrl(tmp_path: Path) -> None:
    shutil.copytree(
        REPO / "hilrl", tmp_path / "hilrl", ignore=shutil.ignore_patterns("__pycache__")
    )
    target = tmp_path / "hilrl" / "data" / "augment.py"
    lines = target.read_text().count("\n")
    target.write_text(
        target.read_text() + "\n\ndef _sneaky():\n    from hilrl.runtime import record\n"
    )
    violations, _ = check_layers(tmp_path, "hilrl", LAYERS, ALLOWED)
    assert [str(v) for v in violations] == [
        f"hilrl/data/augment.py:{lines + 4}: hilrl.data.augment imports hilrl.runtime.record "
        "(hilrl.runtime is above hilrl.data)"
    ]


def test_every_import_inside_a_function_says_why() -> None:
    found = unexplained_local_imports(REPO, "hilrl")
    allowed = set(UNEXPLAINED_LOCAL_IMPORTS_ALLOWED)
    unexplained = [f for f in found if f.split(":")[0] not in allowed]
    assert not unexplained, (
        "move these to the top of their module, or comment '# optional: <dependency>' / "
        "'# start-up: <what stays unloaded>':\n" + "\n".join(unexplained)
    )
    stale = allowed - {f.split(":")[0] for f in found}
    assert not stale, f"delete these UNEXPLAINED_LOCAL_IMPORTS_ALLOWED entries: {sorted(stale)}"


def test_local_import_check_accepts_a_reason_on_the_line_or_above_the_block(
    tmp_path: Path,
) -> None:
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "m.py": """\
                def a():
                    # start-up: heavy
                    import json
                    from os import (
                        path,
                    )
                    import sys

                def b():
                    import csv  # optional: csv

                def c():
                    x = 1
                    import re
                """,
        },
    )
    assert unexplained_local_imports(root, "pkg") == ["pkg/m.py:14: import re"]


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


TOY_LAYERS = (("pkg.low_a", "pkg.low_b"), ("pkg.mid",), ("pkg.top",))


def test_checker_reports_upward_imports_anywhere_in_a_module(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "low_a/__init__.py": "",
            "low_b.py": "",
            "mid/__init__.py": "",
            "top/__init__.py": "",
            "top/run.py": "",
            "top/leaf.py": "from pkg.mid import thing\nfrom pkg import low_b\n",  # downward
            "mid/thing.py": """\
                from typing import TYPE_CHECKING

                import pkg.low_a

                if TYPE_CHECKING:
                    from pkg.top import run

                def go():
                    from ..top.run import main
                    return main
                """,
            "low_a/sibling.py": "from pkg.low_b import x\n",
            "mid/lazy.py": """\
                import importlib
                NAMES = {"f": "pkg.top.run"}
                def get(name):
                    return importlib.import_module(NAMES[name])
                """,
        },
    )
    violations, _ = check_layers(root, "pkg", TOY_LAYERS)
    got = sorted((v.path, v.line, v.importer, v.target) for v in violations)
    assert got == [
        ("pkg/low_a/sibling.py", 1, "pkg.low_a.sibling", "pkg.low_b"),
        ("pkg/mid/lazy.py", 2, "pkg.mid.lazy", "pkg.top.run"),
        ("pkg/mid/thing.py", 6, "pkg.mid.thing", "pkg.top.run"),  # under TYPE_CHECKING
        ("pkg/mid/thing.py", 9, "pkg.mid.thing", "pkg.top.run"),  # relative, in a function
    ]
    message = str(next(v for v in violations if v.line == 9))
    assert (
        message
        == "pkg/mid/thing.py:9: pkg.mid.thing imports pkg.top.run (pkg.top is above pkg.mid)"
    )


def test_checker_allow_list_and_unknown_packages(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "mid/__init__.py": "from pkg.top import x\n",
            "top/__init__.py": "",
            "stray/__init__.py": "",
            "top/y.py": "import pkg.stray\n",
        },
    )
    violations, used = check_layers(root, "pkg", TOY_LAYERS, {("pkg.mid", "pkg.top")})
    assert used == {("pkg.mid", "pkg.top")}
    assert [str(v) for v in violations] == [
        "pkg/top/y.py:1: pkg.top.y imports pkg.stray (pkg.stray is in no layer of the table)"
    ]


if __name__ == "__main__":
    found, used_entries = hilrl_violations()
    problems = [str(v) for v in found]
    problems += [
        f"stale ALLOWED entry (no such import any more): {e}"
        for e in sorted(set(ALLOWED) - used_entries)
    ]
    problems += [
        f"{f} (an import inside a function without '# optional:' or '# start-up:')"
        for f in unexplained_local_imports(REPO, "hilrl")
        if f.split(":")[0] not in UNEXPLAINED_LOCAL_IMPORTS_ALLOWED
    ]
    for problem in problems:
        print(problem)
    print(
        f"layers: {len(found)} upward import(s), {len(used_entries)} allowed for now; "
        f"{len(problems) - len(found)} other problem(s)",
        file=sys.stderr,
    )
    sys.exit(1 if problems else 0)
