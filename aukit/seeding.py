"""Seeding rules. Every random draw in the project comes from one of these generators.

* Sample ``i`` of a run with seed ``s`` draws everything from ``sample_rng(s, i)``, so its
  content never depends on worker count, order or sharding. Seed 0 is a valid seed.
* Procedural identities are built from their own integer seed (``identity_seed``), so an
  identity is reproducible from the label alone.
"""

from __future__ import annotations

import numpy as np

# Distinct stream tags so the identity pool never correlates with per-sample draws.
_IDENTITY_STREAM = 0x1D
_SPLIT_STREAM = 0x5B


def _check_seed(seed: int) -> int:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The generator for sample ``index`` of a run with ``seed``."""
    return np.random.default_rng([_check_seed(seed), _check_seed(index)])


def identity_seed(seed: int, identity_index: int) -> int:
    """Integer seed of identity ``identity_index`` in the pool of run ``seed`` (63-bit)."""
    ss = np.random.SeedSequence([_check_seed(seed), _IDENTITY_STREAM, _check_seed(identity_index)])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def split_is_test(seed: int, key: int, test_fraction: float) -> bool:
    """Deterministic train/test assignment of item ``key`` (e.g. an identity index)."""
    rng = np.random.default_rng([_check_seed(seed), _SPLIT_STREAM, _check_seed(key)])
    return bool(rng.random() < test_fraction)
