"""Photo identities from the real faces in ../shared/data (skipped where absent).

The full checks (hundreds of identities) are ``bench/photo_identity_checks.py``; this is a
small version that runs in the suite.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from tests.conftest import shared_data_or_skip

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def real_identities(tmp_path_factory):
    data = shared_data_or_skip("real_faces")
    from synth.identity.build import build_identities
    from synth.identity.photo import read_meta
    from synth.identity.photo_pool import list_identity_files

    rows = list(csv.DictReader(open(data / "labels.csv")))
    seen, picks = set(), []
    for r in rows:
        if r["emotion"] == "neutral" and r["identity"] not in seen:
            seen.add(r["identity"])
            picks.append(data / "images" / r["image"])
        if len(picks) == 4:
            break
    out = tmp_path_factory.mktemp("real_ids")
    report = build_identities(picks, out, workers=1, progress=False)
    files = list_identity_files(str(out))
    assert report["accepted"] == len(files) >= 3, report["skip_reasons"]
    return [(f, read_meta(f)) for f in files]


def test_real_photos_fit_well(real_identities):
    for _, meta in real_identities:
        assert meta["fit"]["residual"] < 0.05
        assert meta["grayscale"] in (True, False)
        assert meta["pose_limits"]["yaw"][0] <= 0 <= meta["pose_limits"]["yaw"][1]


def test_neutral_rerender_keeps_landmarks_and_identity(real_identities, rig, cache, renderer):
    """MediaPipe finds the re-rendered face where the rig put it; dlib sees the same person."""
    from aukit.faces import FaceAnalyzer
    from aukit.imageio import load_image
    from eval.judges.identity import IdentityJudge, distance
    from synth.identity.sheet import photo_spec
    from synth.scene import build_scene

    up = 3      # the session renderer is small; MediaPipe and dlib see the render upscaled
    judge = IdentityJudge()
    with FaceAnalyzer() as faces:
        for path, meta in real_identities:
            out = renderer.render(build_scene(photo_spec(path, {}, meta["fit"]["pose"], renderer.size), rig, cache))
            big = np.asarray(Image.fromarray(out["rgb"]).resize((renderer.size * up,) * 2, Image.Resampling.BICUBIC))
            face = faces.largest_face(big, allow_tiny=True)
            assert face is not None
            gt = out["landmarks_2d"] * up
            iod = np.linalg.norm(gt[33] - gt[263])
            nme = np.linalg.norm(face.landmarks[:, :2] - gt, axis=1).mean() / iod
            assert nme < 0.08, nme
            src = load_image(meta["source"])
            src_face = faces.largest_face(src, allow_tiny=True)
            emb = judge.embed([src, big], [src_face.landmarks, gt])
            assert distance(emb[0], emb[1]) < 0.6
