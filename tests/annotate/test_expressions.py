"""AU tables for the annotator's training renders (annotate/cnn/expressions.py)."""

from __future__ import annotations

import numpy as np
import pytest

from annotate.cnn.expressions import (DISTRESS, INDEPENDENT_AUS, VARIANTS, distress_rows, open_mouth_rows, variant_rows,
                                      write_table)
from aukit.aus import GANIMATION_AUS
from aukit.dataset import read_au_table

MOUTH = [GANIMATION_AUS.index("AU25"), GANIMATION_AUS.index("AU26")]


def test_variant_rows_are_listed_emfacs_combinations():
    table = variant_rows(300, seed=1)
    listed = {tuple(sorted(c)) for combos in VARIANTS.values() for c in combos}
    for row in table:
        active = tuple(sorted(int(GANIMATION_AUS[j][2:]) for j in np.flatnonzero(row > 0)))
        assert active in listed
    assert table.min() >= 0 and table.max() <= 5


def _active(row: np.ndarray) -> tuple[int, ...]:
    return tuple(sorted(int(GANIMATION_AUS[j][2:]) for j in np.flatnonzero(row > 0)))


def test_distress_rows_draw_every_listed_crying_combination_and_nothing_else():
    table = distress_rows(1200, seed=4)
    seen = [_active(row) for row in table]
    listed = {tuple(sorted(c)) for c in DISTRESS}
    assert set(seen) == listed                                  # each combination drawn, no other
    brows = np.mean([1 in a and 4 in a for a in seen])
    crying = np.mean([6 in a and 25 in a for a in seen])        # squeezed eyes with the mouth open
    assert brows > 0.85 and crying > 0.15
    assert table.min() >= 0 and table.max() <= 5
    assert not np.allclose(table[:100], variant_rows(100, seed=4))   # its own table, not VARIANTS


def test_open_mouth_rows_part_the_lips_in_half_independently_of_the_other_aus():
    table = open_mouth_rows(4000, seed=2)
    opened = table[:, MOUTH[0]] > 0
    assert 0.45 < opened.mean() < 0.55
    assert np.all(table[~opened][:, MOUTH[1]] == 0)                   # AU26 only with AU25
    others = table[:, [GANIMATION_AUS.index(a) for a in INDEPENDENT_AUS]] > 0
    assert np.all((others.sum(axis=1) >= 1) & (others.sum(axis=1) <= 6))
    # each AU is active at the same rate with the lips parted or closed (no emotion pattern)
    assert np.abs(others[opened].mean(axis=0) - others[~opened].mean(axis=0)).max() < 0.05
    corr = np.corrcoef(others.T.astype(float))
    assert np.abs(corr[~np.eye(len(corr), dtype=bool)]).max() < 0.12   # near-independent pairs
    assert table.min() >= 0 and table.max() <= 5


def test_write_table_round_trips_and_rejects_unknown_kinds(tmp_path):
    path = write_table(tmp_path / "t", 20, seed=3, kind="open-mouth")
    table = read_au_table(path.parent)
    assert len(table) == 20
    assert np.allclose(np.stack(list(table.values())), open_mouth_rows(20, seed=3), atol=1e-3)
    with pytest.raises(ValueError, match="unknown table kind"):
        write_table(tmp_path / "u", 5, kind="fear")
