"""Imports follow the data: aukit <- synth | train <- eval. Checked on the source (AST),
including imports inside functions, so a lazy import cannot sneak a dependency in."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# package -> top-level modules it must never import (at any depth)
FORBIDDEN = {
    "aukit": {"torch", "torchvision", "synth", "train", "eval", "annotate", "bpy", "pyrender"},
    "synth": {"torch", "torchvision", "train", "eval", "annotate"},
    "train": {"synth", "eval", "annotate", "bpy", "pyrender"},
}
# where bpy may appear at all
BPY_ALLOWED = {"synth/render/blender_backend.py", "synth/render/blender_materials.py",
               "synth/render/blender_meshes.py"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def sources(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_layering(package):
    files = sources(package)
    assert files, f"no sources found for {package}"
    bad = {str(f.relative_to(REPO)): sorted(imported_modules(f) & FORBIDDEN[package]) for f in files}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"{package} imports what it must not: {bad}"


# modules that come with the bpy wheel
BPY_MODULES = {"bpy", "mathutils", "bpy_extras"}


def test_bpy_is_confined_to_the_blender_backend():
    users = {str(f.relative_to(REPO)) for pkg in ("aukit", "synth", "train", "eval", "annotate", "ausynth")
             for f in sources(pkg) if BPY_MODULES & imported_modules(f)}
    assert users <= BPY_ALLOWED


def test_checker_sees_lazy_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def g():\n    import torch.nn as nn\n    from train.loop import x\n")
    assert {"torch", "train"} <= imported_modules(f)
