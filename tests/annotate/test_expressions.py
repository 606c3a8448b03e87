"""AU tables for the annotator's training renders (annotate/cnn/expressions.py)."""

from __future__ import annotations

import numpy as np
import pytest

from annotate.cnn.expressions import (BROW_RATES, DISTRESS, GRIEF_BROWS, INDEPENDENT_AUS, JAW_BROW_RATES, LOWER_AUS, UPPER_RATES, VARIANTS,
                                      brow_rows, distress_rows, grief_rows, jaw_rows, open_mouth_rows, upper_rows, variant_rows,
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


def test_grief_rows_pair_grief_brows_with_an_independent_lower_face():
    table = grief_rows(4000, seed=5)
    seen = [_active(row) for row in table]
    assert all(1 in a and 4 in a for a in seen)                      # grief brows in every row
    assert not any(n in a for a in seen for n in (2, 5, 6, 9))         # no raise, widening, cheek or nose
    uppers = {tuple(n for n in a if n in (1, 4, 7, 45)) for a in seen}
    assert uppers == {tuple(sorted(c)) for c in GRIEF_BROWS}
    lower = table[:, [GANIMATION_AUS.index(a) for a in LOWER_AUS]] > 0
    opened = table[:, MOUTH[0]] > 0
    assert 0.45 < opened.mean() < 0.55 and lower.sum(axis=1).max() <= 3
    # the lower face does not depend on the brows or the mouth opening
    lid = table[:, GANIMATION_AUS.index("AU07")] > 0
    assert np.abs(lower[lid].mean(axis=0) - lower[~lid].mean(axis=0)).max() < 0.06
    assert np.abs(lower[opened].mean(axis=0) - lower[~opened].mean(axis=0)).max() < 0.05
    assert table.min() >= 0 and table.max() <= 5


def test_brow_rows_switch_each_upper_au_on_independently_at_its_rate():
    table = brow_rows(6000, seed=6)
    upper = table[:, [GANIMATION_AUS.index(a) for a in BROW_RATES]] > 0
    assert np.allclose(upper.mean(axis=0), list(BROW_RATES.values()), atol=0.025)
    au01, au04 = upper[:, 0], upper[:, 2]
    assert abs(au01[au04].mean() - au01[~au04].mean()) < 0.04       # AU04 with and without AU01 alike
    corr = np.corrcoef(upper.T.astype(float))
    assert np.abs(corr[~np.eye(len(corr), dtype=bool)]).max() < 0.06
    lower = table[:, [GANIMATION_AUS.index(a) for a in LOWER_AUS]] > 0
    assert np.abs(lower[au04].mean(axis=0) - lower[~au04].mean(axis=0)).max() < 0.05
    assert not table[:, [GANIMATION_AUS.index(a) for a in ("AU06", "AU09")]].any()
    assert table.min() >= 0 and table.max() <= 5


def test_upper_rows_add_the_cheek_raiser_independently_of_the_smile():
    table = upper_rows(6000, seed=7)
    on = table > 0
    au06, au12, au07 = (on[:, GANIMATION_AUS.index(a)] for a in ("AU06", "AU12", "AU07"))
    assert abs(au06.mean() - UPPER_RATES["AU06"]) < 0.025
    assert abs(au12[au06].mean() - au12[~au06].mean()) < 0.04     # AU06 with and without the smile alike
    assert abs(au07[au06].mean() - au07[~au06].mean()) < 0.04     # ... and with and without the squint
    upper = on[:, [GANIMATION_AUS.index(a) for a in UPPER_RATES]]
    assert np.allclose(upper.mean(axis=0), list(UPPER_RATES.values()), atol=0.025)
    assert not on[:, GANIMATION_AUS.index("AU09")].any()


def test_jaw_rows_drop_the_jaw_in_half_the_rows_independently_of_the_brows_and_lids():
    table = jaw_rows(6000, seed=8)
    on = table > 0
    au26, au25 = on[:, GANIMATION_AUS.index("AU26")], on[:, GANIMATION_AUS.index("AU25")]
    assert abs(au26.mean() - 0.5) < 0.025 and au25[au26].all()      # a dropped jaw parts the lips
    upper = on[:, [GANIMATION_AUS.index(a) for a in JAW_BROW_RATES]]
    assert np.allclose(upper.mean(axis=0), list(JAW_BROW_RATES.values()), atol=0.025)
    assert np.abs(upper[au26].mean(axis=0) - upper[~au26].mean(axis=0)).max() < 0.04
    assert table.min() >= 0 and table.max() <= 5


def test_write_table_round_trips_and_rejects_unknown_kinds(tmp_path):
    path = write_table(tmp_path / "t", 20, seed=3, kind="open-mouth")
    table = read_au_table(path.parent)
    assert len(table) == 20
    assert np.allclose(np.stack(list(table.values())), open_mouth_rows(20, seed=3), atol=1e-3)
    with pytest.raises(ValueError, match="unknown table kind"):
        write_table(tmp_path / "u", 5, kind="fear")
