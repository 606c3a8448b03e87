"""``ausynth train`` end to end: dry run, input errors, SIGINT, resume from the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ausynth.cli import main as ausynth
from train import checkpoint

from conftest import tiny_overrides

REPO = Path(__file__).resolve().parents[2]


def sets(out: Path, *extra: str) -> list[str]:
    return [a for o in tiny_overrides(out) + list(extra) for a in ("--set", o)]


def test_dry_run_prints_resolved_config(tiny_data: Path, tmp_path: Path, capsys):
    rc = ausynth(["train", "--config", str(REPO / "configs/train/cpu-small.yaml"),
                  "--data", f"synth:{tiny_data}", "--data", f"real:{tiny_data}",
                  "--mix", "synth=0.5,real=0.5", "--set", "optim.batch_size=8", "--dry-run",
                  "--out", str(tmp_path / "run")])
    assert rc == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["optim"]["batch_size"] == 8 and cfg["model"]["image_size"] == 64
    assert [(s["name"], s["weight"]) for s in cfg["data"]["sources"]] == [("synth", 0.5), ("real", 0.5)]
    assert not (tmp_path / "run").exists()  # a dry run does no work


def test_official_preset_is_the_default():
    from aukit.config import to_dict
    from train.config import TrainConfig, load_config
    preset = load_config(REPO / "configs/train/official.yaml")
    assert to_dict(preset.model) == to_dict(TrainConfig().model)
    assert to_dict(preset.loss) == to_dict(TrainConfig().loss)
    assert to_dict(preset.optim) == to_dict(TrainConfig().optim)


def test_bad_inputs_fail_before_work(tiny_data: Path, tmp_path: Path, capsys):
    out = tmp_path / "run"
    assert ausynth(["train", "--set", "optim.bach_size=3", "--data", f"a:{tiny_data}"]) == 2
    assert "did you mean 'optim.batch_size'" in capsys.readouterr().err
    assert ausynth(["train", "--data", f"a:{tmp_path / 'missing'}", "--out", str(out)]) == 2
    assert "folder not found" in capsys.readouterr().err
    assert ausynth(["train", "--out", str(out)]) == 2
    assert "no training data" in capsys.readouterr().err
    empty = tmp_path / "empty"
    (empty / "imgs").mkdir(parents=True)
    (empty / "aus.csv").write_text("id," + ",".join(f"AU{i}" for i in range(1)) + "\n")
    assert ausynth(["train", "--data", f"a:{empty}", "--out", str(out)]) == 2
    assert "missing columns" in capsys.readouterr().err
    assert not (out / "checkpoints").exists()
    assert ausynth(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_sigint_saves_checkpoint_then_resume_finishes(tiny_data: Path, tmp_path: Path):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "ausynth", "train", "--data", f"real:{tiny_data}",
           *sets(run, "optim.epoch_images=400", "run.image_every=1000")]  # 200 steps
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        metrics = run / "metrics.jsonl"
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if metrics.is_file() and metrics.read_text().count('"step": ') >= 4:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted at step" in err
    saved = checkpoint.load(run)["step"]
    assert 3 <= saved < 200
    events = [json.loads(x).get("event") for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert "interrupted" in events
    # Resume from the run directory with its stored config, for two more steps.
    rc = ausynth(["train", "--resume", str(run), "--stop-after", str(saved + 2)])
    assert rc == 0
    assert checkpoint.load(run)["step"] == saved + 2


def test_mixed_preset_keeps_weights_for_named_sources(tiny_data: Path, capsys):
    rc = ausynth(["train", "--config", str(REPO / "configs/train/mixed.yaml"), "--dry-run",
                  "--data", f"synth:{tiny_data}", "--data", f"real:{tiny_data}"])
    assert rc == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert [(s["name"], s["path"], s["weight"]) for s in cfg["data"]["sources"]] == [
        ("synth", str(tiny_data), 0.5), ("real", str(tiny_data), 0.5)]
    assert cfg["data"]["target_sampler"] == "source" and cfg["data"]["target_source"] == "synth"
    # A source the preset does not weigh needs an explicit --mix.
    assert ausynth(["train", "--config", str(REPO / "configs/train/mixed.yaml"), "--dry-run",
                    "--data", f"synth:{tiny_data}", "--data", f"web:{tiny_data}"]) == 2
    assert "--mix" in capsys.readouterr().err
