"""The training loop: run-directory outputs, exact resume, schedule, NaN guard, checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from train import checkpoint, loop
from train.config import load_config, with_sources
from train.loop import TrainingDiverged, training_loop

from conftest import tiny_overrides

D_TERMS = {"loss/d_real", "loss/d_fake", "loss/d_cond", "loss/d_gp"}
G_TERMS = {"loss/g_fake", "loss/g_cond", "loss/g_cyc", "loss/g_mask", "loss/g_tv"}


def config(data: Path, out: Path, *extra: str):
    return with_sources(load_config(None, tiny_overrides(out) + list(extra)), [f"real:{data}"], None)


def metrics(run: Path) -> list[dict]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [x for x in lines if "step" in x and "event" not in x]


def test_run_directory_outputs(tiny_data: Path, tmp_path: Path):
    run = tmp_path / "run"
    result = training_loop(config(tiny_data, run))
    assert result.step == result.total_steps == 4 and not result.interrupted
    # Resolved config round-trips; data statistics per source.
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["image_size"] == 32
    stats = json.loads((run / "data.json").read_text())
    assert stats[0]["source"] == "real" and stats[0]["n_images"] == 10
    rows = metrics(run)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for r in rows:
        assert D_TERMS <= set(r) and {"attention_mean", "lr/g", "lr/d", "perf/img_per_s",
                                      "mix/real"} <= set(r)
    # n_critic=2: generator terms exactly on steps 2 and 4.
    assert [bool(G_TERMS <= set(r)) for r in rows] == [False, True, False, True]
    # 2 epochs of 2 steps: constant then linear decay to zero.
    assert [r["lr/g"] for r in rows] == [1e-4, 1e-4, 1e-4, 5e-5]
    assert sorted(p.name for p in (run / "images").iterdir()) == ["step_0000002.png",
                                                                   "step_0000004.png"]
    assert list((run / "tb").glob("events.out.tfevents.*"))
    ckpt = checkpoint.load(run)  # weights_only=True inside
    assert ckpt["step"] == 4 and ckpt["config"]["optim"]["batch_size"] == 4
    assert set(ckpt) >= {"generator", "critic", "opt_g", "opt_d", "rng", "config"}
    # Optimizer step counts show the schedule: separate GP = 2 critic steps per batch.
    assert _adam_steps(ckpt["opt_d"]) == 8 and _adam_steps(ckpt["opt_g"]) == 2


def _adam_steps(opt_state: dict) -> int:
    return int(next(iter(opt_state["state"].values()))["step"])


def test_combined_gp_takes_one_critic_step_per_batch(tiny_data: Path, tmp_path: Path):
    run = tmp_path / "run"
    training_loop(config(tiny_data, run, "loss.gp_mode=combined", "run.image_every=100"))
    ckpt = checkpoint.load(run)
    assert _adam_steps(ckpt["opt_d"]) == 4 and _adam_steps(ckpt["opt_g"]) == 2


def test_interrupted_and_resumed_run_matches_uninterrupted(tiny_data: Path, tmp_path: Path):
    extra = ("optim.epoch_images=12", "run.image_every=100")  # 3 steps/epoch, 6 steps
    full = tmp_path / "full"
    training_loop(config(tiny_data, full, *extra))
    part = tmp_path / "part"
    first = training_loop(config(tiny_data, part, *extra), stop_after=4)
    assert first.step == 4
    # The resumed run must not depend on global RNG state left by anything else.
    torch.manual_seed(1234)
    second = training_loop(checkpoint.config_of(checkpoint.load(part)), resume=part)
    assert second.step == 6
    a, b = metrics(full), metrics(part)
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5, 6]
    for ra, rb in zip(a, b):
        for key in D_TERMS | G_TERMS | {"attention_mean", "lr/g"}:
            assert (key in ra) == (key in rb)
            if key in ra:
                assert ra[key] == pytest.approx(rb[key], rel=1e-6, abs=1e-9), (ra["step"], key)
    wa = checkpoint.load(full)["generator"]
    wb = checkpoint.load(part)["generator"]
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-6, atol=1e-9)


def test_fresh_run_refuses_to_overwrite(tiny_data: Path, tmp_path: Path):
    run = tmp_path / "run"
    training_loop(config(tiny_data, run, "run.image_every=100"), stop_after=1)
    with pytest.raises(FileExistsError, match="--resume"):
        training_loop(config(tiny_data, run))


def test_nan_stops_and_keeps_last_good_checkpoint(tiny_data: Path, tmp_path: Path, monkeypatch):
    run = tmp_path / "run"
    cfg = config(tiny_data, run, "run.ckpt_every=1", "run.image_every=100")
    real_loss, calls = loop.critic_loss, {"n": 0}

    def poisoned(*args, **kw):
        total, terms = real_loss(*args, **kw)
        calls["n"] += 1
        if calls["n"] >= 3:  # step 3 goes bad
            total = total * float("nan")
            terms = {**terms, "d_real": terms["d_real"] * float("nan")}
        return total, terms

    monkeypatch.setattr(loop, "critic_loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"non-finite loss terms \[.*'d_real'"):
        training_loop(cfg)
    ckpt = checkpoint.load(run)
    assert ckpt["step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["generator"].values())
    assert all(torch.isfinite(v).all() for v in ckpt["critic"].values())


def test_checkpoint_refuses_pickled_code(tmp_path: Path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "x": Evil()}, path)
    with pytest.raises(checkpoint.CheckpointError, match="cannot load"):
        checkpoint.load(path)


def test_training_learns_au_regression(tiny_data: Path, tmp_path: Path):
    """A few dozen steps on images that show their AUs: the critic's AU error falls."""
    run = tmp_path / "run"
    training_loop(config(tiny_data, run, "optim.epoch_images=160", "optim.epochs_decay=0",
                         "optim.lr_d=0.0005", "run.image_every=1000"))
    rows = metrics(run)
    first = sum(r["loss/d_cond"] for r in rows[:5]) / 5
    last = sum(r["loss/d_cond"] for r in rows[-5:]) / 5
    assert last < 0.5 * first, (first, last)


def test_mixed_sources_log_weights_and_statistics(tmp_path: Path):
    from conftest import make_dataset
    a = make_dataset(tmp_path / "a", n=10, seed=1)
    b = make_dataset(tmp_path / "b", n=6, seed=2)
    run = tmp_path / "run"
    cfg = with_sources(load_config(None, tiny_overrides(run) + ["run.image_every=100",
                                                               "optim.epoch_images=16"]),
                       [f"synth:{a}", f"real:{b}"], "synth=0.25,real=0.75")
    training_loop(cfg)
    stats = {s["source"]: s for s in json.loads((run / "data.json").read_text())}
    assert stats["synth"]["prob"] == 0.25 and stats["real"]["prob"] == 0.75
    assert stats["synth"]["n_images"] == 8 and stats["real"]["n_images"] == 4
    assert set(stats["real"]["au_mean"]) >= {"AU12", "AU01"}
    last = metrics(run)[-1]
    assert last["mix/synth"] + last["mix/real"] == pytest.approx(1.0)
    assert 0.4 < last["mix/real"] <= 1.0  # 32 draws at p = 0.75
