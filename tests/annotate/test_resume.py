"""Kill ``ausynth prepare`` mid-run (SIGKILL, workers included), rerun: same dataset as a clean run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aukit.aus import GANIMATION_AUS
from aukit.dataset import iter_labels

REPO = Path(__file__).resolve().parents[2]
N_PHOTOS = 240
TABLES = ("aus.csv", "aus_openface.pkl", "train_ids.csv", "test_ids.csv", "labels.jsonl")


@pytest.fixture(scope="module")
def inputs(real_faces_dir, tmp_path_factory):
    """(images, openface csv folder): N real faces (symlinked) with one OpenFace row each."""
    root = tmp_path_factory.mktemp("resume")
    images, csvs = root / "images", root / "openface"
    images.mkdir()
    csvs.mkdir()
    names = sorted(os.listdir(real_faces_dir / "images"))[:N_PHOTOS]
    header = "face, confidence, success, " + ", ".join(f"{a}_r" for a in GANIMATION_AUS)
    for k, name in enumerate(names):
        os.symlink(real_faces_dir / "images" / name, images / name)
        aus = ", ".join(f"{(k * 7 + j) % 50 / 10:g}" for j in range(len(GANIMATION_AUS)))
        (csvs / f"{Path(name).stem}.csv").write_text(f"{header}\n0, 0.95, 1, {aus}\n")
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 50)
    return images, csvs


def command(inputs, out: Path, labels_csv: Path) -> list[str]:
    images, csvs = inputs
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


@pytest.mark.shared_data
@pytest.mark.slow
def test_kill_and_resume_equals_clean_run(inputs, real_faces_dir, tmp_path):
    labels_csv = real_faces_dir / "labels.csv"
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    run(command(inputs, clean, labels_csv))

    proc = subprocess.Popen(command(inputs, resumed, labels_csv), cwd=REPO, start_new_session=True,
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

    run(command(inputs, resumed, labels_csv))
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
