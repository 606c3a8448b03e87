from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def basis():
    from aukit.basis import load_basis

    return load_basis()


@pytest.fixture(scope="session")
def rig(basis):
    from synth.rig import HeadRig

    return HeadRig(basis)


@pytest.fixture(scope="session")
def rig_with_wrinkles(rig):
    """``(scale, only=None) -> rig``: the session rig with another wrinkle scale and choice of
    wrinkled AUs (``identity.wrinkle_aus``; geometry shared, so nothing else changes)."""
    import copy

    def make(scale: float, only: tuple[str, ...] | None = None):
        other = copy.copy(rig)
        other.wrinkles, other.wrinkle_aus = scale, only
        return other
    return make


@pytest.fixture(scope="session")
def cache(rig):
    from synth.scene import IdentityCache

    return IdentityCache(rig)


@pytest.fixture(scope="session")
def renderer():
    from synth.render import make_renderer

    r = make_renderer("pyrender", 64, antialias="ssaa2")
    yield r
    r.close()
