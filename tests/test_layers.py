"""The package is a house with floors: every import goes to the same floor or one below,
steps never import each other, and no circle of imports exists (read from the AST, no import run).

A module's floor is its first dotted prefix in :data:`LAYERS`; the picture is in
docs/architecture.md. Moving a module to another floor means changing this table.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Set

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bigcat_ml"

# Bottom to top: (floor, the modules and packages on it).
LAYERS = (
    ("foundation", ("bigcat_ml.config", "bigcat_ml.storage")),
    ("records", ("bigcat_ml.tracking", "bigcat_ml.oid")),
    ("runtime", ("bigcat_ml.runtime",)),
    ("data", ("bigcat_ml.chips", "bigcat_ml.synthetic")),
    ("scoring", ("bigcat_ml.scoring",)),
    ("models and reports", ("bigcat_ml.training", "bigcat_ml.reporting")),
    ("step kit", ("bigcat_ml.stepkit",)),
    ("steps", ("bigcat_ml.sample_data", "bigcat_ml.preprocess", "bigcat_ml.train", "bigcat_ml.evaluate", "bigcat_ml.compare")),
    ("main", ("bigcat_ml.main",)),
    ("command line", ("bigcat_ml.cli",)),
)
STEPS = dict(LAYERS)["steps"]
ROOT = "bigcat_ml"
# The package's __init__ is on no floor: it runs before any of its modules, to quiet
# TensorFlow's start-up lines in every process, and imports only what does that.
ROOT_IMPORTS = ("bigcat_ml.runtime.tf_logs",)


@dataclass(frozen=True)
class Import:
    """One ``import`` statement's target, where it is written."""

    module: str  # the importing module
    path: str  # its file, from the package's parent folder
    line: int
    target: str  # the imported module


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(package: Path = PACKAGE) -> Iterator[Import]:
    """Every import of a ``bigcat_ml`` module inside ``package``, lazy ones (inside functions) included."""
    for path in sorted(package.rglob("*.py")):
        module = module_name(path, package)
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = module.split(".") if is_package else module.split(".")[:-1]
                prefix = base[: len(base) - node.level + 1] if node.level else []
                origin = ".".join(prefix + ([node.module] if node.module else []))
                # ``from bigcat_ml.x import y`` imports the module x.y when y is one, else x
                targets = [f"{origin}.{alias.name}" if _is_module(f"{origin}.{alias.name}", package) else origin
                           for alias in node.names]
            else:
                continue
            for target in dict.fromkeys(targets):
                if target.split(".")[0] == ROOT and target != module:
                    yield Import(module, str(path.relative_to(package.parent)), node.lineno, target)


def _is_module(name: str, package: Path) -> bool:
    relative = Path(*name.split(".")[1:])
    return (package / relative).with_suffix(".py").is_file() or (package / relative / "__init__.py").is_file()


def floor(module: str, layers=LAYERS) -> int:
    """The index in ``layers`` of the floor ``module`` is on."""
    for index, (_, members) in enumerate(layers):
        if any(module == member or module.startswith(member + ".") for member in members):
            return index
    raise AssertionError(f"{module} is on no floor of tests/test_layers.py's LAYERS: add it to one")


def violations(found: List[Import], layers=LAYERS) -> List[str]:
    """Each import that climbs to a higher floor, or from one step to another, as a sentence."""
    problems = []
    for imp in found:
        where = f"{imp.path}:{imp.line} imports {imp.target}"
        if imp.module == ROOT or imp.target == ROOT:
            if imp.module == ROOT and imp.target not in ROOT_IMPORTS:
                problems.append(f"{where}: the package's __init__ imports only {', '.join(ROOT_IMPORTS)}")
            continue
        here, there = floor(imp.module, layers), floor(imp.target, layers)
        if there > here:
            problems.append(f"{where}: from floor '{layers[here][0]}' up to floor '{layers[there][0]}'")
        elif _step(imp.module, layers) and _step(imp.target, layers) and _step(imp.module, layers) != _step(imp.target, layers):
            problems.append(f"{where}: one step imports another (steps share code through the step kit or the library)")
    return problems


def _step(module: str, layers) -> str:
    steps = dict(layers).get("steps", ())
    return next((step for step in steps if module == step or module.startswith(step + ".")), "")


def cycles(found: List[Import]) -> List[List[str]]:
    """The circles of the module graph: its strongly connected components of more than one module (Tarjan)."""
    graph: Dict[str, Set[str]] = {}
    for imp in found:
        graph.setdefault(imp.module, set()).add(imp.target)
        graph.setdefault(imp.target, set())
    return [sorted(component) for component in _components(graph) if len(component) > 1]


def _components(graph: Mapping[str, Set[str]]) -> List[List[str]]:
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def package_imports() -> List[Import]:
    return list(imports())


def test_every_module_is_on_a_floor(package_imports):
    for path in PACKAGE.rglob("*.py"):
        if module_name(path) != ROOT:
            floor(module_name(path))


def test_every_import_goes_to_the_same_floor_or_one_below_and_no_step_imports_another(package_imports):
    problems = violations(package_imports)
    assert not problems, "imports that break the floors of tests/test_layers.py:\n  " + "\n  ".join(problems)


def test_no_circle_of_imports(package_imports):
    assert cycles(package_imports) == []


def test_the_checker_names_an_upward_import_and_a_step_importing_a_step(tmp_path):
    package = tmp_path / "bigcat_ml"
    (package / "config").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "config" / "__init__.py").write_text("")
    (package / "config" / "compose.py").write_text("import os\n\nfrom bigcat_ml import preprocess\n")
    (package / "preprocess.py").write_text("from bigcat_ml.train import run\n")
    (package / "train.py").write_text("from bigcat_ml.config import compose\n")

    found = list(imports(package))
    problems = violations(found)

    assert [(imp.module, imp.line, imp.target) for imp in found] == [
        ("bigcat_ml.config.compose", 3, "bigcat_ml.preprocess"),
        ("bigcat_ml.preprocess", 1, "bigcat_ml.train"),
        ("bigcat_ml.train", 1, "bigcat_ml.config.compose"),
    ]
    assert problems == [
        "bigcat_ml/config/compose.py:3 imports bigcat_ml.preprocess: from floor 'foundation' up to floor 'steps'",
        "bigcat_ml/preprocess.py:1 imports bigcat_ml.train: one step imports another (steps share code through the step kit or the library)",
    ]
    assert cycles(found) == [["bigcat_ml.config.compose", "bigcat_ml.preprocess", "bigcat_ml.train"]]
