"""The layers of the package, read from every module's imports (ast, nothing imported).

    cli  →  comparison  →  runners  →  tasks  →  optimizers, models, data, metrics, config  →  base

A module imports modules of its own package or of a lower layer; the lower layers never
reach up (the task registry names its runners and data checks by "module:attribute" paths
instead). The base is the package's top-level modules: errors, locks, replicas,
keras_adapter. Files and packages form no cycle, and the layers a config check or a data
command runs through never import a deep-learning framework.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "blogml"
LAYERS = {"__main__": 6, "cli": 5, "comparison": 4, "runners": 3, "tasks": 2,
          "optimizers": 1, "models": 1, "data": 1, "metrics": 1, "config": 1}
BASE = 0  # blogml/__init__.py and the top-level modules
FRAMEWORK_FREE = ("tasks", "config", "data", "metrics")
FRAMEWORKS = ("keras", "tensorflow", "jax", "torch")


@dataclass(frozen=True)
class Import:
    source: str  # dotted module that imports
    target: str  # dotted module (or package) imported
    line: int

    def __str__(self) -> str:
        return f"{self.source} (line {self.line}) imports {self.target}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> list[Import]:
    """Every import of the module, at any depth (lazy ones and `if TYPE_CHECKING:` too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [Import(name, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:  # `from blogml.x import module` names a module
                full = f"{base}.{alias.name}"
                found.append(Import(name, full if full in MODULES else base, node.lineno))
    return found


IMPORTS = [i for name, path in MODULES.items() for i in _imports(name, path)]
INTERNAL = [i for i in IMPORTS if i.target == "blogml" or i.target.startswith("blogml.")]


def package_of(module: str) -> str:
    """`blogml.runners.nl2sql.runner` -> `runners`; a top-level module is its own."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "blogml"


def layer_of(module: str) -> int:
    return LAYERS.get(package_of(module), BASE)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return components


def test_the_import_reader_sees_the_package():
    """Guards the rules below against reading nothing: known modules and imports."""
    assert {"blogml.cli.main", "blogml.tasks.registry", "blogml.runners.base",
            "blogml.data.nl2sql", "blogml.errors"} <= set(MODULES)
    assert any(i.source == "blogml.runners.base" and i.target == "blogml.runners.checkpoint"
               for i in INTERNAL)
    assert any(i.source == "blogml.optimizers.build" and i.target == "keras" for i in IMPORTS)


def test_every_subpackage_has_a_layer():
    """A new folder must be placed in LAYERS (unplaced, it would count as the base)."""
    folders = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert folders - set(LAYERS) == set()


def test_every_import_goes_down_a_layer_or_stays_in_its_package():
    upward = [f"{i} (layer {package_of(i.source)} may not import {package_of(i.target)})"
              for i in INTERNAL
              if package_of(i.source) != package_of(i.target)
              and layer_of(i.target) > layer_of(i.source)]
    assert upward == [], "\n".join(upward)


@pytest.mark.parametrize("package", ["models", "data", "metrics", "config", "tasks"])
def test_lower_layers_never_import_runners_or_cli(package):
    reaching = [str(i) for i in INTERNAL if package_of(i.source) == package
                and package_of(i.target) in ("runners", "cli", "comparison")]
    assert reaching == [], "\n".join(reaching)


@pytest.mark.parametrize("package", FRAMEWORK_FREE)
def test_config_checks_and_data_never_import_a_framework(package):
    framework = [str(i) for i in IMPORTS if package_of(i.source) == package
                 and i.target.split(".")[0] in FRAMEWORKS]
    assert framework == [], "\n".join(framework)


def test_no_import_cycle_between_files():
    edges: dict[str, set[str]] = {}
    for i in INTERNAL:
        if i.target in MODULES and i.target != i.source:
            edges.setdefault(i.source, set()).add(i.target)
    assert _cycles(edges) == []


def test_no_import_cycle_between_packages():
    edges: dict[str, set[str]] = {}
    for i in INTERNAL:
        source, target = package_of(i.source), package_of(i.target)
        if source != target:
            edges.setdefault(source, set()).add(target)
    assert _cycles(edges) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
