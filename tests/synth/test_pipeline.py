"""The render job: writer/reader round trip, worker-count determinism, kill + resume, CLI errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aukit.aus import RIG_AUS, au_vector, rig_to_ganimation
from aukit.config import load
from aukit.dataset import SafeAUUnpickler, iter_labels, read_au_csv, read_dataset, read_manifest
from synth.config import SynthConfig
from synth.pipeline import prepare_job, run_job

SMALL = ["output.size=48", "identity.pool_size=4", "identity.test_fraction=0.3"]


def render(out: Path, n: int, workers: int = 1, seed: int = 0) -> dict:
    job = prepare_job(load(SynthConfig, overrides=SMALL), out, n, seed)
    return run_job(job, workers=workers, progress=False)


def metas(root: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((root / "meta").glob("*.json"))}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "one_worker"
    render(out, 8, workers=1)
    return out


def test_round_trip_through_the_gamination_reader(small_set):
    samples = read_dataset(small_set)
    assert sorted(s.id for s in samples) == [f"{i:08d}" for i in range(8)]
    by_id = metas(small_set)
    for s in samples:
        spec_aus = au_vector(by_id[s.id]["spec"]["aus"])
        np.testing.assert_array_equal(s.aus, rig_to_ganimation(spec_aus))   # exact, not rounded
        assert s.split == by_id[s.id]["split"]
        img = Image.open(s.image)
        assert img.size == (48, 48) and img.mode == "RGB"
    pkl = SafeAUUnpickler(open(small_set / "aus_openface.pkl", "rb")).load()
    csv = read_au_csv(small_set / "aus.csv")
    assert set(pkl) == set(csv) and all(np.array_equal(pkl[k], csv[k]) for k in csv)
    assert len(list(iter_labels(small_set))) == 8


def test_manifest_and_arrays(small_set):
    man = read_manifest(small_set)
    assert man["n_samples"] == 8 and man["seed"] == 0 and man["schema_version"] == 1
    assert man["config"]["output"]["size"] == 48 and "numpy" in man["versions"]
    assert man["au_region_bits"] == list(RIG_AUS)
    meta = metas(small_set)["00000003"]
    with np.load(small_set / meta["arrays"]) as arrays:
        assert arrays["seg"].shape == (48, 48) and arrays["landmarks_2d"].shape == (478, 2)
        assert arrays["au_regions"].dtype == np.uint32


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def test_labels_do_not_depend_on_worker_count(small_set, tmp_path):
    two = tmp_path / "two_workers"
    render(two, 8, workers=2)
    a, b = metas(small_set), metas(two)
    assert a == b                                       # every label byte-identical
    for sid in a:
        ia = np.asarray(Image.open(small_set / "imgs" / f"{sid}.jpg"))
        ib = np.asarray(Image.open(two / "imgs" / f"{sid}.jpg"))
        assert _psnr(ia, ib) >= 45.0


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ausynth", *args], capture_output=True, text=True, timeout=300)


def test_kill_and_resume_completes_without_duplicates(small_set, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "ausynth", "render", "--n", "8", "--out", str(out), "--workers", "1",
           "--no-progress", *[a for s in SMALL for a in ("--set", s)]]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "meta").glob("*.json"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list((out / "meta").glob("*.json")))
    assert 3 <= done < 8, "the kill should land mid-run"
    # simulate the worst moment: an image written but its label not yet, plus a temp file
    Image.new("RGB", (5, 5)).save(out / "imgs" / "00000007.jpg")
    (out / "imgs" / ".00000006.jpg.123.tmp").write_bytes(b"partial")
    r = _cli("render", "--n", "8", "--out", str(out), "--workers", "1", "--no-progress",
             *[a for s in SMALL for a in ("--set", s)])
    assert r.returncode == 0, r.stderr
    assert metas(out) == metas(small_set)               # same labels as an uninterrupted run
    ids = (out / "train_ids.csv").read_text().split() + (out / "test_ids.csv").read_text().split()
    assert sorted(ids) == [f"{i:08d}.jpg" for i in range(8)]
    assert Image.open(out / "imgs" / "00000007.jpg").size == (48, 48)
    assert not list(out.rglob("*.tmp"))


@pytest.mark.parametrize("args, message", [
    (["--set", "pose.yawn=[0,1]"], "unknown config key 'pose.yawn'"),
    (["--set", "pose.yaw=[40,-40]"], "pose.yaw"),
    (["--n", "0"], "--n must be at least 1"),
    (["--set", "background.image_dir=/nonexistent"], "not a directory"),
])
def test_bad_input_fails_before_any_work(tmp_path, args, message):
    out = tmp_path / "never"
    argv = ["render", "--out", str(out), *args]
    if "--n" not in args:
        argv += ["--n", "3"]
    r = _cli(*argv)
    assert r.returncode == 2 and message in r.stderr
    assert not (out / "imgs").exists()


def test_unwritable_output_and_foreign_dataset_are_refused(small_set, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    r = _cli("render", "--n", "2", "--out", str(blocker / "sub"))
    assert r.returncode == 2 and "not writable" in r.stderr
    r = _cli("render", "--n", "8", "--out", str(small_set), "--seed", "5", *[a for s in SMALL for a in ("--set", s)])
    assert r.returncode == 2 and "different seed" in r.stderr


def test_dry_run_and_help():
    r = _cli("render", "--n", "1", "--out", "/tmp/unused", "--dry-run", "--set", "pose.gaze=5")
    assert r.returncode == 0 and "gaze: 5.0" in r.stdout
    r = _cli("render", "--help")
    assert r.returncode == 0 and "--workers" in r.stdout and "resumes" in r.stdout


def _lid_gap68(meta: dict) -> float:
    """Mean lid gap over eye width from the 68-point landmarks (both eyes)."""
    p = np.asarray(meta["landmarks68"], dtype=float)
    gap = lambda a, b, c, d, l, r: (np.linalg.norm(p[a] - p[b]) + np.linalg.norm(p[c] - p[d])) / (2 * np.linalg.norm(p[l] - p[r]))  # noqa: E731
    return 0.5 * (gap(37, 41, 38, 40, 36, 39) + gap(43, 47, 44, 46, 42, 45))


def test_eyeball_fit_reaches_the_workers(tmp_path):
    """``identity.eyeball_fit=on_margin`` (the rig before the eyelid fix) renders the same
    scenes with wider resting eyes; the default keeps each identity's lid gap."""
    gaps = {}
    for fit in ("behind_lids", "on_margin"):
        job = prepare_job(load(SynthConfig, overrides=SMALL + [f"identity.eyeball_fit={fit}"]), tmp_path / fit, 6, 3)
        run_job(job, workers=1, progress=False)
        ms = metas(tmp_path / fit)
        gaps[fit] = np.array([_lid_gap68(m) for m in ms.values()])
        assert read_manifest(tmp_path / fit)["config"]["identity"]["eyeball_fit"] == fit
    assert gaps["on_margin"].mean() > 1.05 * gaps["behind_lids"].mean()


def render_variants(root: Path, key: str, values: tuple[str, ...]) -> tuple[dict, dict]:
    """Render 4 samples (seed 5) once per ``key=value``: ``({value: metas}, {value: {id: image}})``."""
    labels, imgs = {}, {}
    for v in values:
        job = prepare_job(load(SynthConfig, overrides=SMALL + [f"{key}={v}"]), root / v, 4, 5)
        run_job(job, workers=1, progress=False)
        labels[v] = metas(root / v)
        imgs[v] = {p.stem: np.asarray(Image.open(p), float) for p in sorted((root / v / "imgs").glob("*"))}
    return labels, imgs


def test_wrinkle_scale_reaches_the_workers(tmp_path):
    """``identity.wrinkles=0`` renders the same samples (same labels) without the creases."""
    labels, imgs = render_variants(tmp_path, "identity.wrinkles", ("0", "1"))
    assert labels["0"] == labels["1"]
    diffs = [np.abs(imgs["0"][k] - imgs["1"][k]).mean() for k in imgs["0"]]
    assert max(diffs) > 0.05


def test_wrinkle_aus_reach_the_workers(tmp_path):
    """``identity.wrinkle_aus=[AU01,AU02]`` renders the same samples with only the forehead
    lines painted: the images differ from all creases' only where another AU has creases."""
    labels, imgs = render_variants(tmp_path, "identity.wrinkle_aus", ("null", "[AU01,AU02]"))
    assert labels["null"] == labels["[AU01,AU02]"]
    assert read_manifest(tmp_path / "[AU01,AU02]")["config"]["identity"]["wrinkle_aus"] == ["AU01", "AU02"]
    from synth.config import WRINKLE_AUS

    other = {k: any(m["spec"]["aus"][au] > 0 for au in WRINKLE_AUS if au not in ("AU01", "AU02"))
             for k, m in labels["null"].items()}
    assert any(other.values())
    for k, has_other in other.items():
        diff = np.abs(imgs["null"][k] - imgs["[AU01,AU02]"][k]).mean()
        assert (diff > 0) == has_other, (k, diff)


def test_a_job_recorded_before_a_new_config_key_resumes(tmp_path):
    """A job.json written before a config key existed resumes when the key is at its default
    (the default renders what the older code did), and is refused when it is not."""
    from aukit.config import ConfigError

    cfg = load(SynthConfig, overrides=SMALL)
    prepare_job(cfg, tmp_path, 2, 5)
    record = json.loads((tmp_path / "job.json").read_text())
    del record["config"]["identity"]["resting_creases"]          # as written by older code
    (tmp_path / "job.json").write_text(json.dumps(record))
    prepare_job(cfg, tmp_path, 2, 5)                              # resumes
    with pytest.raises(ConfigError, match="different config"):
        prepare_job(load(SynthConfig, overrides=SMALL + ["identity.resting_creases=0.5"]), tmp_path, 2, 5)


def test_resting_creases_reach_the_workers(tmp_path):
    """``identity.resting_creases=1`` renders the same samples (same AU labels) with creases
    in some of them, recorded in each sample's spec."""
    metas_, imgs = render_variants(tmp_path, "identity.resting_creases", ("0", "1"))
    assert [m["au17"] for m in metas_["0"].values()] == [m["au17"] for m in metas_["1"].values()]
    assert all(m["spec"]["creases"] == {} for m in metas_["0"].values())
    creased = [k for k, m in metas_["1"].items() if m["spec"]["creases"]]
    assert creased
    for k in imgs["0"]:
        assert (np.abs(imgs["0"][k] - imgs["1"][k]).mean() > 0.05) == (k in creased)


def test_au_gain_reaches_the_workers(tmp_path):
    """``identity.au_gain`` renders the same samples with the same AU labels; a sample's image
    and landmarks move exactly when one of the scaled AUs is active in it."""
    gained = ("AU01", "AU02", "AU04", "AU12")
    value = "{" + ", ".join(f"{a}: 2" for a in gained) + "}"
    labels, imgs = render_variants(tmp_path, "identity.au_gain", ("{}", value))
    assert read_manifest(tmp_path / value)["config"]["identity"]["au_gain"] == {a: 2.0 for a in gained}
    active = {}
    for k, m in labels["{}"].items():
        g = labels[value][k]
        assert g["au17"] == m["au17"] and g["spec"]["aus"] == m["spec"]["aus"]
        active[k] = any(m["spec"]["aus"][a] > 0 for a in gained)
        moved = not np.allclose(g["landmarks68"], m["landmarks68"], atol=1e-6)
        diff = np.abs(imgs[value][k] - imgs["{}"][k]).mean()
        assert moved == active[k] and (diff > 0) == active[k], (k, moved, diff)
    assert any(active.values())
