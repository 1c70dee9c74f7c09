"""The codebase's shape, checked: no import cycle, no import against the README's layer order,
no private name across packages, small files.

The import graph is read from the source (every ``import`` outside ``if TYPE_CHECKING:``,
function-local ones included: a cycle hidden inside a function is still a cycle), so the check
needs no import of the package and sees what an import-time check would miss.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = SRC / "fraudops"
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(n) for n in ast.walk(node))
    return inside


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names, line) of each runtime import of a fraudops module in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = _type_checking_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "fraudops":
                found.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "fraudops":
                    found.append((alias.name, [], node.lineno))
    return found


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in MODULES.items():
        for module, names, _ in _imports(path):
            for target in [module, *(f"{module}.{n}" for n in names)]:
                if target in MODULES and target != name:
                    edges[name].add(target)
    return edges


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and _is_package(module)) else "<top>"


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    nodes = set(graph) | {b for bs in graph.values() for b in bs}
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_no_module_import_cycle() -> None:
    assert _cycles(_edges()) == []


def test_no_package_import_cycle() -> None:
    packages: dict[str, set[str]] = defaultdict(set)
    for source, targets in _edges().items():
        for target in targets:
            a, b = _package(source), _package(target)
            if a != b and "<top>" not in (a, b):
                packages[a].add(b)
    assert _cycles(packages) == []


def test_no_private_name_imported_across_packages() -> None:
    offenders = []
    for name, path in MODULES.items():
        for module, names, line in _imports(path):
            if module not in MODULES or _package(module) == _package(name):
                continue
            private = [n for n in names if n.startswith("_") and not n.endswith("__")]
            if private or any(part.startswith("_") for part in module.split(".")[1:]):
                offenders.append(f"{path.relative_to(SRC)}:{line} from {module} import {names}")
    assert offenders == []


def test_no_source_file_over_the_limit() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in MODULES.values()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


# A lake client or an MLflow client built anywhere but the composition root (runtime.py).
CLIENT_BUILDS = re.compile(r"Lake\.open\(|\bLake\(|\bbuild_client\(|\bmlflow_client\(")


def test_clients_are_built_only_by_the_runtime() -> None:
    builders = {
        str(p.relative_to(SRC))
        for p in MODULES.values()
        if CLIENT_BUILDS.search(re.sub(r"(?m)^\s*(def|#).*$", "", p.read_text()))
    }
    assert builders == {"fraudops/runtime.py"}


def readme_layers(readme: str) -> dict[str, int]:
    """The README Layout section's order: each top-level package or module of ``src/fraudops/``
    with its rank (names listed on one line share a rank)."""
    section = readme.split("## Layout", 1)[1]
    block = section.split("```", 2)[1]
    ranks: dict[str, int] = {}
    rank = 0
    for line in block.splitlines():
        entry = re.match(r"^  (\S.*)$", line)
        if entry is None:
            continue  # the tree's root, a continuation line, tests/ and bench/
        names = []
        for token in entry.group(1).split():
            if not re.fullmatch(r"[a-z_]+(\.py|/)", token):
                break
            names.append(token.removesuffix(".py").removesuffix("/"))
        if names:
            ranks.update(dict.fromkeys(names, rank))
            rank += 1
    return ranks


def _unit(module: str) -> str:
    """The Layout entry a module belongs to: its top-level package, or itself at the top."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_breaks(edges: dict[str, set[str]], ranks: dict[str, int]) -> list[str]:
    """Each import of a module listed below the importer (and each unlisted package)."""
    found = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            a, b = _unit(source), _unit(target)
            if a == b or "" in (a, b):
                continue
            for name in (a, b):
                if name not in ranks:
                    found.append(f"{name} is not in the README's Layout list")
            if a in ranks and b in ranks and ranks[b] > ranks[a]:
                found.append(f"{source} imports {target}: {b} is listed below {a}")
    return sorted(set(found))


def test_readme_lists_every_package_once() -> None:
    ranks = readme_layers((ROOT / "README.md").read_text())
    units = {_unit(m) for m in MODULES} - {""}
    assert units - set(ranks) == set()
    assert set(ranks) - units == set()


def test_no_import_against_the_readme_layer_order() -> None:
    ranks = readme_layers((ROOT / "README.md").read_text())
    assert layer_breaks(_edges(), ranks) == []


def test_the_layer_check_reports_a_wrong_way_import() -> None:
    readme = (
        "# x\n## Layout\n\ntext\n```\nsrc/fraudops/\n  errors.py ids.py   base\n"
        "  lake/           the lake,\n                  continued/ here\n"
        "  serving/        the app\ntests/  unit/\n```\n## Next\n"
    )
    ranks = readme_layers(readme)
    assert ranks == {"errors": 0, "ids": 0, "lake": 1, "serving": 2}
    edges = {
        "fraudops.serving.app": {"fraudops.lake.catalog", "fraudops.errors", "fraudops.serving.x"},
        "fraudops.lake.catalog": {"fraudops.serving.metrics", "fraudops.ids"},
        "fraudops.errors": {"fraudops.ids"},
        "fraudops.ids": {"fraudops.errors"},
    }
    assert layer_breaks(edges, ranks) == [
        "fraudops.lake.catalog imports fraudops.serving.metrics: serving is listed below lake"
    ]
    edges["fraudops.lake.catalog"].add("fraudops.compute.base")
    assert "compute is not in the README's Layout list" in layer_breaks(edges, ranks)


PACKAGES = sorted({m.rsplit(".", 1)[0] if not _is_package(m) else m for m in MODULES})


def _package_modules(package: str) -> list[str]:
    """The modules of ``package`` (not of its sub-packages), in reverse order."""
    return sorted(
        (m for m in MODULES if m == package or m.rsplit(".", 1)[0] == package), reverse=True
    )


@pytest.fixture(scope="module")
def imported_alone() -> dict[str, str]:
    """Per package, '' or the traceback of importing its modules in an interpreter where no
    other fraudops module was imported before (tests/import_zygote.py)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "import_zygote.py")],
        input=json.dumps({p: _package_modules(p) for p in PACKAGES}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results: dict[str, str] = json.loads(done.stdout)
    return results


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_on_its_own(package: str, imported_alone: dict[str, str]) -> None:
    # Its modules imported in reverse order with no other fraudops package loaded first: an
    # import that only works after another package was imported fails here.
    assert imported_alone[package] == ""


def test_the_import_check_reports_an_import_that_needs_another_package_first(
    tmp_path: Path,
) -> None:
    """The zygote's children really start without fraudops: a module that uses a package it
    never imports fails there, and works once that package was imported before."""
    (tmp_path / "needs_lake.py").write_text("import fraudops\nfraudops.lake.catalog.Lake\n")
    (tmp_path / "lake_first.py").write_text("import fraudops.lake.catalog\n")
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "import_zygote.py")],
        input=json.dumps({"alone": ["needs_lake"], "after": ["lake_first", "needs_lake"]}),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(SRC)])},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    assert "AttributeError" in results["alone"] and "lake" in results["alone"]
    assert results["after"] == ""


def test_whole_package_imports_in_reverse_order() -> None:
    for module in sorted(MODULES, reverse=True):
        importlib.import_module(module)
