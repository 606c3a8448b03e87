"""Rendering backends behind one interface: ``make_renderer(name, size, ...)``.

A renderer has ``render(geom: SceneGeometry) -> dict[str, np.ndarray]`` (see
:meth:`synth.render.pyrender_backend.PyrenderRenderer.render` for the keys, shapes and
dtypes) and ``close()``. Backends are imported lazily so ``bpy`` is only needed for
``blender``.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

BACKENDS: dict[str, tuple[str, str, str]] = {
    # name -> (module, class, install hint)
    "pyrender": ("synth.render.pyrender_backend", "PyrenderRenderer", "pip install pyrender==0.1.45"),
    "blender": ("synth.render.blender_backend", "BlenderRenderer", "pip install 'ausynth[blender]' (bpy==5.0.1)"),
}


# name -> top-level package the backend needs (checked without importing it)
REQUIRES: dict[str, str] = {"pyrender": "pyrender", "blender": "bpy"}


def check_available(name: str) -> None:
    """Raise RuntimeError naming the install command if backend ``name`` cannot be imported."""
    if name not in BACKENDS:
        raise ValueError(f"unknown render backend {name!r}; choose one of {sorted(BACKENDS)}")
    package = REQUIRES.get(name)
    if package and importlib.util.find_spec(package) is None:
        raise RuntimeError(f"backend {name!r} is not available: no module named {package!r}. "
                           f"Install it with: {BACKENDS[name][2]}")


def make_renderer(name: str, size: int, **options: Any):
    """Instantiate backend ``name``; clear error if unknown or its package is missing."""
    if name not in BACKENDS:
        raise ValueError(f"unknown render backend {name!r}; choose one of {sorted(BACKENDS)}")
    module, cls, hint = BACKENDS[name]
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise RuntimeError(f"backend {name!r} is not available: {exc}. Install it with: {hint}") from exc
    return getattr(mod, cls)(size, **options)
