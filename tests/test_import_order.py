"""Imports go one way through the package's layers, lower to higher (read with ``ast``, so
function-local and relative imports count too):

    utils → sparse_coding → models → objectives → data → optim → config → evaluators → train
          → entry points (main, evaluate, dip, tools)

A module may import its own layer and any lower one. The training loop runs the evaluators,
so ``train`` sits above them, but a task (``train/tasks``) never imports an evaluator: evaluators
see a task only through its ``eval_step`` outputs and its declared capabilities (``Task``).
"""

from __future__ import annotations

import ast
import pathlib
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "sparse_ae"
LAYERS = ("utils", "sparse_coding", "models", "objectives", "data", "optim", "config", "evaluators", "train",
          "entry")
ENTRY_POINTS = {"main", "evaluate", "dip", "tools"}


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def layer(name: str) -> str | None:
    """The layer of module ``name`` of this package (None for other packages)."""
    parts = name.split(".")
    if parts[0] != PACKAGE.name:
        return None
    if len(parts) == 1 or parts[1] in ENTRY_POINTS:
        return "entry"
    return parts[1]


def imported_modules(path: pathlib.Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, relative ones resolved; ``from pkg import x``
    counts as ``pkg.x`` when ``x`` is a module."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            found += [(node.lineno, f"{base}.{alias.name}" if is_module(f"{base}.{alias.name}") else base)
                      for alias in node.names]
    return found


def violations(paths) -> list[str]:
    """One line per import against the order, naming the module, the line and the import."""
    bad = []
    for path in paths:
        name = module_name(path)
        own = layer(name)
        for line, target in imported_modules(path):
            other = layer(target)
            if other is None or other == own:
                continue
            upward = LAYERS.index(other) > LAYERS.index(own)
            task_to_evaluator = name.startswith("sparse_ae.train.tasks") and other == "evaluators"
            if upward or task_to_evaluator:
                bad.append(f"{name} ({own}) imports {target} ({other}) at line {line}")
    return bad


def package_files() -> list[pathlib.Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    unknown = {module_name(p): layer(module_name(p)) for p in package_files()
               if layer(module_name(p)) not in LAYERS}
    assert not unknown, f"modules outside the layer map (add their layer to LAYERS): {unknown}"


def test_imports_go_one_way():
    bad = violations(package_files())
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


@pytest.mark.parametrize("module, source, expected", [
    ("config", "from sparse_ae.train import sharding\n", "imports sparse_ae.train.sharding (train)"),
    ("evaluators/x", "from ..train.tasks import dcea\n", "imports sparse_ae.train.tasks.dcea (train)"),
    ("models/x", "def f():\n    from sparse_ae import evaluate\n", "imports sparse_ae.evaluate (entry)"),
    ("train/tasks/x", "from sparse_ae.evaluators import fid\n", "imports sparse_ae.evaluators.fid (evaluators)"),
])
def test_the_check_catches_an_upward_import(tmp_path, monkeypatch, module, source, expected):
    """The walk sees plain, relative and function-local imports, and tasks importing evaluators."""
    fake = tmp_path / PACKAGE.name
    for path in package_files():   # a copy of the package's tree, with one bad module added
        (fake / path.relative_to(PACKAGE)).parent.mkdir(parents=True, exist_ok=True)
        (fake / path.relative_to(PACKAGE)).write_text(path.read_text())
    bad_file = fake / f"{module}.py"
    bad_file.write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert [line for line in violations([bad_file]) if expected in line], violations([bad_file])
