"""Layering rules of the trainer: it reads datasets from disk and never imports the
renderer (synth) or the evaluation package (eval); the AU /5 happens only in aukit.aus."""

from __future__ import annotations

import ast
from pathlib import Path

TRAIN = Path(__file__).resolve().parents[2] / "train"
SOURCES = sorted(TRAIN.glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_train_never_imports_synth_or_eval():
    assert SOURCES
    for path in SOURCES:
        bad = {m for m in imported_modules(path) if m.split(".")[0] in ("synth", "eval")}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_no_hidden_au_scaling():
    """No division or multiplication by 5 in the trainer: aukit.aus.to_unit does it."""
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.Mult)):
                for side in (node.left, node.right):
                    assert not (isinstance(side, ast.Constant) and side.value in (5, 5.0)), \
                        f"{path.name}:{node.lineno}: scale AUs with aukit.aus.to_unit/from_unit"
