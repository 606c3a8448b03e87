"""Attention statistics and IoU/precision/recall against known region masks."""

from __future__ import annotations

import numpy as np
import pytest

from aukit.aus import GANIMATION_AUS, RIG_AUS
from eval.attention import attention_stats, region_bits, region_scores, resize_mask, target_region


def test_scores_on_known_masks():
    edit = np.zeros((1, 4, 4))
    edit[0, :2, :] = 1.0          # 8 pixels edited
    truth = np.zeros((1, 4, 4), bool)
    truth[0, 1:3, :] = True       # 8 pixels of region, 4 shared
    s = region_scores(edit, truth)
    assert s["iou"][0] == pytest.approx(4 / 12)
    assert s["precision"][0] == pytest.approx(0.5) and s["recall"][0] == pytest.approx(0.5)


def test_threshold_and_undefined_cases():
    edit = np.full((2, 2, 2), 0.4)   # below the 0.5 threshold: nothing edited
    truth = np.zeros((2, 2, 2), bool)
    truth[1, 0, 0] = True
    s = region_scores(edit, truth)
    assert np.isnan(s["iou"][0]) and np.isnan(s["precision"][0]) and np.isnan(s["recall"][0])
    assert s["iou"][1] == 0 and np.isnan(s["precision"][1]) and s["recall"][1] == 0
    assert region_scores(edit, truth, threshold=0.3)["recall"][1] == 1.0


def test_attention_statistics():
    a = np.array([[[0.0, 0.02], [0.5, 1.0]]])
    s = attention_stats(a)
    assert s["mean"][0] == pytest.approx(0.38)
    assert s["replaced"][0] == 0.5 and s["kept"][0] == 0.25


def test_region_bits_follow_the_bit_order_and_fold_blink():
    t = np.zeros(17)
    t[GANIMATION_AUS.index("AU12")] = 2
    t[GANIMATION_AUS.index("AU45")] = 5
    rig = region_bits(t, RIG_AUS)
    assert rig == (1 << RIG_AUS.index("AU12")) | (1 << RIG_AUS.index("AU43")) | (1 << RIG_AUS.index("AU45"))
    gan = region_bits(t, GANIMATION_AUS)
    assert gan == (1 << GANIMATION_AUS.index("AU12")) | (1 << GANIMATION_AUS.index("AU45"))
    regions = np.array([[1 << RIG_AUS.index("AU12"), 1 << RIG_AUS.index("AU01")]], np.uint32)
    assert target_region(regions, rig).tolist() == [[True, False]]


def test_resize_mask_nearest():
    m = np.array([[1, 2], [3, 4]], np.uint32)
    assert resize_mask(m, 4).tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    assert resize_mask(resize_mask(m, 4), 2).tolist() == m.tolist()
