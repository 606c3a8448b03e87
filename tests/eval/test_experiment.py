"""The study driver: config, commands, the real subset, stage bookkeeping (no heavy runs)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from aukit.config import ConfigError, from_dict, read_yaml
from eval import experiment as E
from eval.experiment_config import ExperimentConfig, ModelSpec

REPO = Path(__file__).resolve().parents[2]


def test_preset_parses_and_unknown_keys_are_rejected():
    cfg = from_dict(ExperimentConfig, read_yaml(REPO / "configs/experiment/cpu-study.yaml"))
    assert [m.real_share for m in cfg.train.models] == [0.0, 0.25, 0.5, 0.75, 1.0]
    with pytest.raises(ConfigError, match="did you mean"):
        from_dict(ExperimentConfig, {"trian": {}})
    with pytest.raises(ConfigError):
        from_dict(ExperimentConfig, {"train": {"models": [{"name": "x", "real_share": 2}]}})


def test_train_commands_give_each_model_its_sources_and_mix(tmp_path):
    st = E.Study(ExperimentConfig(), tmp_path / "s")
    synth = [str(a) for a in E.train_command(st, ModelSpec("synth", 0.0))]
    mix = [str(a) for a in E.train_command(st, ModelSpec("mix25", 0.25))]
    real = [str(a) for a in E.train_command(st, ModelSpec("real", 1.0))]
    assert not any(a.startswith("real:") for a in synth) and "--mix" not in synth
    assert not any(a.startswith("synth:") for a in real) and "--mix" not in real
    assert mix[mix.index("--mix") + 1] == "synth=0.75,real=0.25"
    assert "optim.epoch_images=1600" in synth          # 1000 steps of batch 16 over 10 epochs
    st2 = E.Study(from_dict(ExperimentConfig, {"train": {"steps": 15}}), tmp_path / "t")
    with pytest.raises(ConfigError, match="multiple"):
        E.train_command(st2, ModelSpec("synth", 0.0))


def test_real_subset_takes_whole_identities_deterministically(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    rows = []
    for p in range(10):
        for k in range(3):
            name = f"p{p}_{k}.jpg"
            (images / name).write_bytes(b"x")
            rows.append({"image": name, "identity": f"id{p}", "emotion": "neutral"})
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["image", "identity", "emotion"])
        w.writeheader()
        w.writerows(rows)
    cfg = from_dict(ExperimentConfig, {"real": {"images": str(images), "labels_csv": str(labels), "n_photos": 20}})
    folder, table = E.real_subset(E.Study(cfg, tmp_path / "a"))
    chosen = list(csv.DictReader(table.open()))
    ids = {r["identity"] for r in chosen}
    assert len(chosen) == 21 and len(ids) == 7            # whole identities: 7 x 3 >= 20
    assert sorted(p.name for p in folder.iterdir()) == sorted(r["image"] for r in chosen)
    _, table2 = E.real_subset(E.Study(cfg, tmp_path / "b"))
    assert table2.read_text() == table.read_text()


def test_stages_are_skipped_only_with_the_same_settings(tmp_path):
    st = E.Study(ExperimentConfig(), tmp_path / "s")
    calls = []
    st.stage("x", {"a": 1}, lambda: calls.append(1))
    st.stage("x", {"a": 1}, lambda: calls.append(2))
    st.stage("x", {"a": 2}, lambda: calls.append(3))
    assert calls == [1, 3]
    assert "x" in E.Study(ExperimentConfig(), tmp_path / "s").log["stages"]


def test_failed_commands_raise_with_the_log_path(tmp_path):
    st = E.Study(ExperimentConfig(), tmp_path / "s")
    with pytest.raises(RuntimeError, match="logs/bad.log"):
        st.run(["python", "-c", "import sys; sys.exit(3)"], "bad")
    assert st.log["commands"][-1]["status"] == 3
