"""Target AU sets."""

from __future__ import annotations

import numpy as np
import pytest

from aukit.aus import GANIMATION_AUS
from eval.targets import DEFAULT_EMOTIONS, build_targets, emotion_aus


def test_default_targets_cover_every_au_and_intensity_then_prototypes():
    ts = build_targets()
    assert len(ts) == 17 * 5 + len(DEFAULT_EMOTIONS)
    au = [t for t in ts if t.kind == "au"]
    for t in au:
        assert np.count_nonzero(t.aus) == 1 and t.aus[GANIMATION_AUS.index(t.name)] == t.intensity
    assert {t.name for t in ts if t.kind == "emotion"} == set(DEFAULT_EMOTIONS)
    assert au[0].label == "AU01=1"


def test_prototypes_drop_aus_outside_the_17():
    anger = emotion_aus("anger")   # AU24 is a rig AU, not a GANimation AU
    assert anger[GANIMATION_AUS.index("AU04")] == 4.0 and anger.shape == (17,)
    assert "AU24" not in build_targets([], [], ["anger"])[0].label


def test_bad_targets_are_refused():
    with pytest.raises(ValueError):
        build_targets(["AU99"])
    with pytest.raises(ValueError):
        build_targets(["AU12"], [6])
    with pytest.raises(ValueError):
        emotion_aus("boredom")
