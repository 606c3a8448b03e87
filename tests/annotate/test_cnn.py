"""The synthetic-cnn annotator: data reading, augmentation, forward/loss, a few training
steps with a checkpoint round trip, the annotator contract and the missing-checkpoint error.

The main fixture is written in the renderer's format (meta/<id>.json with ``spec.aus``,
pose, split, ``au_occlusion``) by aukit's writer, so these tests take seconds; one test
renders four real samples with ``ausynth render`` to keep the reader honest about that format.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from annotate import registry
from annotate.base import Annotator, AnnotatorUnavailable, FaceSample, check_estimate
from annotate.cnn import checkpoint
from annotate.cnn.annotator import SyntheticCNNAnnotator
from annotate.cnn.augment import augment
from annotate.cnn.config import AugmentConfig, TrainConfig
from annotate.cnn.data import load_training_arrays, read_dataset_arrays
from annotate.cnn.model import AUNet, ModelConfig
from annotate.cnn.train import loss_fn, make_batch, train
from aukit import config as cfgmod
from aukit.aus import RIG_AUS, rig_to_ganimation
from aukit.writer import DatasetWriter

torch.set_num_threads(1)
TINY_MODEL = ["model.image_size=32", "model.stem=8", "model.widths=[8,8]", "model.blocks=[1,1]"]


def write_rendered_like(root: Path, n: int = 10, size: int = 48, seed: int = 0) -> Path:
    """``n`` samples in the renderer's label format; AU12 brightens a mouth band."""
    rng = np.random.default_rng(seed)
    writer = DatasetWriter(root, image_format="png")
    for i in range(n):
        aus = {a: 0.0 for a in RIG_AUS}
        aus["AU12"], aus["AU01"] = (float(v) for v in rng.uniform(0, 5, 2))
        img = np.full((size, size, 3), 80, np.uint8)
        img[int(size * .7):int(size * .8), size // 4:3 * size // 4] = int(40 + 40 * aus["AU12"])
        spec = {"aus": aus, "pose": {"yaw": float(rng.uniform(-30, 30)), "pitch": 0.0, "roll": 0.0},
                "expression": {"strategy": "prototype" if i % 2 else "sparse"}}
        label = {"au17": rig_to_ganimation(np.array([aus[a] for a in RIG_AUS])).tolist(),
                 "split": "test" if i < 2 else "train", "spec": spec,
                 "au_occlusion": {"AU12": 0.75}, "occluded_face_fraction": 0.2}
        writer.write_sample(f"{i:08d}", img, label)
    return root


@pytest.fixture
def rendered_like(tmp_path: Path) -> Path:
    return write_rendered_like(tmp_path / "data")


def test_reader_keeps_exact_labels_and_occlusion(rendered_like, tmp_path):
    data = read_dataset_arrays(rendered_like, 40, cache_dir=tmp_path / "cache", log=False)
    assert data.images.shape == (10, 40, 40) and data.images.dtype == np.uint8
    assert data.aus.shape == (10, len(RIG_AUS)) and data.test.sum() == 2 and data.prototype.sum() == 5
    k = RIG_AUS.index("AU12")
    w = data.weights(floor=0.1)
    assert np.allclose(w[:, k], 0.25) and np.allclose(np.delete(w, k, axis=1), 1.0)
    assert np.allclose(data.visible, 0.8)
    again = read_dataset_arrays(rendered_like, 40, cache_dir=tmp_path / "cache", log=False)  # from the cache
    assert np.array_equal(again.images, data.images) and np.array_equal(again.aus, data.aus)


def test_reader_cache_follows_a_folder_rendered_again(tmp_path):
    """Same path, same sample count, new content: the cache must not serve the old arrays."""
    import os
    import shutil

    root = write_rendered_like(tmp_path / "data", seed=0)
    first = read_dataset_arrays(root, 40, cache_dir=tmp_path / "cache", log=False)
    shutil.rmtree(root)
    write_rendered_like(root, seed=1)
    for f in (root / "meta").glob("*.json"):          # a later render: newer files
        os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    second = read_dataset_arrays(root, 40, cache_dir=tmp_path / "cache", log=False)
    assert not np.array_equal(first.aus, second.aus)
    assert np.array_equal(second.aus, read_dataset_arrays(root, 40, cache_dir=None, log=False).aus)


def test_region_model_reads_upper_aus_from_the_upper_face_only():
    """With ``model.regions`` the brow/lid AUs cannot see the mouth (and vice versa)."""
    from annotate.cnn.model import LOWER_START, UPPER_AUS, UPPER_END, AUNet, ModelConfig

    torch.manual_seed(0)
    net = AUNet(ModelConfig(image_size=40, stem=8, widths=(8, 8), blocks=(1, 1), regions=True)).eval()
    x = torch.rand(3, 1, 40, 40)
    up = [RIG_AUS.index(a) for a in UPPER_AUS]
    lo = [k for k in range(len(RIG_AUS)) if k not in up]
    mouth, brows = x.clone(), x.clone()
    mouth[..., round(UPPER_END * 40):, :] = torch.rand(3, 1, 40 - round(UPPER_END * 40), 40)
    brows[..., :round(LOWER_START * 40), :] = torch.rand(3, 1, round(LOWER_START * 40), 40)
    with torch.no_grad():
        base, m, b = net(x)["aus"], net(mouth)["aus"], net(brows)["aus"]
    assert torch.allclose(base[:, up], m[:, up]) and not torch.allclose(base[:, lo], m[:, lo])
    assert torch.allclose(base[:, lo], b[:, lo]) and not torch.allclose(base[:, up], b[:, up])


def test_region_model_trains_and_round_trips(rendered_like, tmp_path):
    out = tmp_path / "run"
    cfg = cfgmod.load(TrainConfig, None, TINY_MODEL + [
        f"data.datasets=[{rendered_like}]", "data.load_size=40", "data.cache_dir=null", "model.regions=true",
        "optim.steps=3", "optim.batch_size=4", "optim.threads=1", "run.eval_every=3", f"run.out_dir={out}"])
    model, _ = checkpoint.load(train(cfg))
    assert model.cfg.regions
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        a, b = model(x)["aus"], model(x)["aus"]
    assert a.shape == (2, len(RIG_AUS)) and torch.equal(a, b)


def test_augment_shapes_ranges_and_mirror():
    g = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (6, 40, 40), dtype=torch.uint8)
    x, flipped = augment(imgs, 32, AugmentConfig(), g)
    assert x.shape == (6, 1, 32, 32) and flipped.shape == (6,)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    plain = AugmentConfig(scale=(1.0, 1.0), shift=0.0, rotate=0.0, p_lowres=0.0, gamma=(1.0, 1.0), ramp=0.0,
                          p_noise=0.0, p_border=0.0, p_cutout=0.0)
    y, flipped = augment(imgs, 40, plain, g)
    ref = imgs.float().unsqueeze(1) / 255.0
    ref = torch.where(flipped.view(-1, 1, 1, 1), torch.flip(ref, dims=[3]), ref)
    assert torch.allclose(y, ref, atol=1e-4)      # identity warp (+ mirror) is exact


def test_forward_and_loss(rendered_like):
    cfg = cfgmod.load(TrainConfig, None, TINY_MODEL + ["data.load_size=40"])
    data = load_training_arrays((str(rendered_like),), 40, None, log=False)
    batch = make_batch(data, data.weights(0.0), np.arange(4), cfg, torch.Generator().manual_seed(0))
    out = AUNet(cfg.model)(batch["x"])
    assert out["aus"].shape == (4, len(RIG_AUS)) and out["visible"].shape == (4,) and out["pose"].shape == (4, 3)
    assert float(out["aus"].detach().min()) >= 0.0 and float(out["aus"].detach().max()) <= 5.0
    loss, parts = loss_fn(out, batch, cfg)
    loss.backward()
    assert torch.isfinite(loss) and set(parts) == {"au", "visible", "pose"}


def test_training_steps_and_checkpoint_round_trip(rendered_like, tmp_path):
    out = tmp_path / "run"
    cfg = cfgmod.load(TrainConfig, None, TINY_MODEL + [
        f"data.datasets=[{rendered_like}]", "data.load_size=40", "data.cache_dir=null",
        "optim.steps=4", "optim.batch_size=4", "optim.threads=1", "run.eval_every=2", "run.log_every=1",
        f"run.out_dir={out}"])
    path = train(cfg)
    assert path.is_file() and (out / "log.jsonl").is_file() and (out / "config.yaml").is_file()
    raw = torch.load(path, map_location="cpu", weights_only=True)   # plain tensors and builtins only
    assert raw["format"] == checkpoint.FORMAT and raw["train"]["steps"] == 4
    model, info = checkpoint.load(path)
    assert info["metrics"]["synth_mae"] >= 0 and isinstance(info["metrics"]["synth_r"], dict)
    x = torch.randn(2, 1, 32, 32)
    saved = AUNet(model.cfg)
    saved.load_state_dict(raw["state_dict"])
    assert torch.allclose(model(x)["aus"], saved.eval()(x)["aus"])

    ann = registry.create("synthetic-cnn", checkpoint=str(path))
    assert isinstance(ann, Annotator) and ann.name == "synthetic-cnn"
    crop = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    est = check_estimate(ann.annotate(FaceSample(crop, np.zeros((478, 3), np.float32),
                                                  np.zeros((478, 3), np.float32), "x.jpg")), ann.name)
    assert est.au17.shape == (17,) and 0.0 <= est.confidence <= 1.0
    au, conf = ann.predict(np.stack([crop, crop[::-1]]))
    assert au.shape == (2, 17) and conf.shape == (2,) and np.allclose(au[0], est.au17, atol=1e-5)


def test_prototype_boost_zero_leaves_the_prototypes_out(rendered_like, tmp_path, monkeypatch):
    import annotate.cnn.train as train_mod

    seen: list[np.ndarray] = []
    real = train_mod.make_batch
    monkeypatch.setattr(train_mod, "make_batch", lambda ts, w, idx, *a: seen.append(ts.prototype[idx]) or real(ts, w, idx, *a))
    base = TINY_MODEL + [f"data.datasets=[{rendered_like}]", "data.load_size=40", "data.cache_dir=null",
                         "optim.steps=6", "optim.batch_size=4", "optim.threads=1", "run.eval_every=6"]
    cfg = cfgmod.load(TrainConfig, None, base + ["data.prototype_boost=0", f"run.out_dir={tmp_path / 'a'}"])
    _, info = checkpoint.load(train(cfg))
    assert info["samples"] == 4 and len(seen) == 6 and not np.concatenate(seen).any()   # 8 train: 4 sparse
    seen.clear()
    train(cfgmod.load(TrainConfig, None, base + ["data.prototype_boost=4", f"run.out_dir={tmp_path / 'b'}"]))
    assert np.concatenate(seen).mean() > 0.5                  # boosted: 4 of every 5 draws on average
    with pytest.raises(cfgmod.ConfigError, match="prototype_boost"):
        cfgmod.load(TrainConfig, None, ["data.prototype_boost=-1"])


def test_best_dev_keeps_the_checkpoint_with_the_best_dev_auc(rendered_like, tmp_path, monkeypatch):
    """run.keep=best_dev: model.pt = the evaluation with the highest mean targeted dev AUC,
    last.pt = the final weights. Dev AUCs are scripted (no real faces needed)."""
    import annotate.cnn.train as train_mod

    scores = iter([0.55, 0.71, 0.60])                     # evaluations at steps 2, 4, 6

    def scripted(ema, val, dev, cfg):
        score = next(scores)
        return {"synth_mae": 1.0, "dev_auc": {e: score for e in train_mod.TARGETED}}

    monkeypatch.setattr(train_mod, "load_dev", lambda cfg: SimpleNamespace(names=["a", "b"]))
    monkeypatch.setattr(train_mod, "evaluate", scripted)
    out = tmp_path / "run"
    cfg = cfgmod.load(TrainConfig, None, TINY_MODEL + [
        f"data.datasets=[{rendered_like}]", "data.load_size=40", "data.cache_dir=null",
        "optim.steps=6", "optim.batch_size=4", "optim.threads=1", "run.eval_every=2",
        f"run.out_dir={out}", "run.keep=best_dev"])
    path = train_mod.train(cfg)
    _, best = checkpoint.load(path)
    _, last = checkpoint.load(out / "last.pt")
    assert best["steps"] == 4 and best["selected_by"] == "best_dev"
    assert last["steps"] == 6


def test_configured_dev_cache_that_is_missing_fails_before_training(rendered_like, tmp_path, capsys, monkeypatch):
    """A configured but missing data.dev_cache must not silently train another recipe (last step,
    even blend): the CLI names the file and the command that builds it, and nothing is decoded."""
    import annotate.cnn.train as train_mod

    monkeypatch.setattr(train_mod, "load_training_arrays", lambda *a, **k: pytest.fail("decoded before the check"))
    missing = tmp_path / "no_cache.npz"
    args = train_mod.build_parser().parse_args([
        "--set", f"data.datasets=[{rendered_like}]", "--set", f"data.dev_cache={missing}",
        "--set", f"run.out_dir={tmp_path / 'run'}"])
    assert train_mod.main(args) == 2
    msg = capsys.readouterr().out
    assert str(missing) in msg and "python -m annotate.evalset cache" in msg
    assert not (tmp_path / "run" / "model.pt").exists()


def test_dev_score_and_keep_validation():
    from annotate.cnn.train import dev_score

    m = {"dev_auc": {"happiness": 0.9, "surprise": 0.7, "sadness": 0.6, "anger": 0.4, "disgust": 0.0}}
    assert dev_score(m) == pytest.approx(0.65)            # disgust is not targeted
    assert dev_score({"synth_mae": 1.0}) == float("-inf")
    with pytest.raises(cfgmod.ConfigError, match="run.keep"):
        cfgmod.load(TrainConfig, None, ["run.keep=best"])


def test_missing_checkpoint_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("AUSYNTH_CNN_CHECKPOINT", raising=False)
    with pytest.raises(AnnotatorUnavailable, match="no checkpoint at .*annotate.cnn.train"):
        registry.create("synthetic-cnn", checkpoint=str(tmp_path / "nope.pt"))
    bad = tmp_path / "bad.pt"
    torch.save({"format": "something-else"}, bad)
    with pytest.raises(AnnotatorUnavailable, match="not an AU-CNN checkpoint"):
        SyntheticCNNAnnotator(checkpoint=bad)


def test_reader_parses_real_renders(tmp_path):
    """Four samples from ``ausynth render`` (skips where the renderer cannot run)."""
    out = tmp_path / "r"
    env = {**os.environ, "PYOPENGL_PLATFORM": "egl"}
    cmd = [sys.executable, "-m", "ausynth", "render", "--n", "4", "--out", str(out), "--seed", "5",
           "--workers", "1", "--no-progress", "--set", "output.size=48", "--set", "output.write_arrays=false",
           "--set", "occluders.probability=1.0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"renderer unavailable here: {proc.stderr.strip()[-300:]}")
    data = read_dataset_arrays(out, 40, cache_dir=None, log=False)
    assert len(data) == 4 and data.images.shape[1:] == (40, 40)
    assert np.all((data.aus >= 0) & (data.aus <= 5)) and np.all((data.visible >= 0) & (data.visible <= 1))
    assert np.all(np.abs(data.pose) <= 90)


@pytest.mark.parametrize("name", ["cnn-render.yaml", "cnn-render-photo.yaml", "cnn-render-table.yaml"])
def test_shipped_render_configs_load(name):
    """The annotator's render configs are valid ``ausynth render`` configs."""
    from synth.config import SynthConfig

    cfg = cfgmod.load(SynthConfig, Path(__file__).resolve().parents[2] / "configs" / "annotate" / name)
    assert cfg.output.size == 128 and cfg.identity.photo_fraction >= 0.0
    assert cfg.identity.wrinkles == 0 and cfg.identity.eyeball_fit == "on_margin"   # the preset's renders


def test_shipped_cnn_preset_loads_with_the_region_model():
    cfg = cfgmod.load(TrainConfig, Path(__file__).resolve().parents[2] / "configs" / "annotate" / "cnn-cpu.yaml")
    assert cfg.model.regions and cfg.run.keep == "best_dev"
    assert [Path(d).name for d in cfg.data.datasets] == ["k21", "k25", "k33", "k36"]   # k33, k36: factorial tables
    assert cfg.run.seed == 1
    assert cfg.data.prototype_boost == 0 and cfg.model.mixstyle == 0.5


def test_mixstyle_mixes_feature_statistics_in_training_only():
    from annotate.cnn.model import MixStyle

    torch.manual_seed(0)
    x = torch.randn(8, 4, 6, 6) * torch.arange(1, 9).view(8, 1, 1, 1) + torch.arange(8).view(8, 1, 1, 1)
    ms = MixStyle(p=1.0, alpha=0.5).train()
    y = ms(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    # the content (normalised features) is kept; only the per-channel mean/std change
    norm = lambda t: (t - t.mean((2, 3), keepdim=True)) / t.std((2, 3), keepdim=True)
    assert torch.allclose(norm(y), norm(x), atol=1e-3)
    assert torch.equal(ms.eval()(x), x) and torch.equal(MixStyle(p=0.0).train()(x), x)
    plain, mixed = AUNet(ModelConfig(image_size=32, stem=8, widths=(8, 8), blocks=(1, 1))), \
        AUNet(ModelConfig(image_size=32, stem=8, widths=(8, 8), blocks=(1, 1), mixstyle=0.5))
    assert sum(isinstance(m, MixStyle) for m in mixed.modules()) == 2
    assert not any(isinstance(m, MixStyle) for m in plain.modules())
    assert sum(v.numel() for v in plain.state_dict().values()) == sum(v.numel() for v in mixed.state_dict().values())
    with pytest.raises(ValueError, match="mixstyle"):
        ModelConfig(mixstyle=1.5)


def test_linear_au_head_keeps_learning_where_the_sigmoid_saturates(tmp_path):
    """``model.au_head: linear``: an output stuck near 0 (where most labels are) still gets the
    full gradient towards an active label; the sigmoid head's gradient there has vanished."""
    cfg = dict(image_size=32, stem=8, widths=(8, 8), blocks=(1, 1), regions=True)
    k = RIG_AUS.index("AU05")
    low = torch.sigmoid(torch.tensor(-8.0)).item()       # both heads start at AU05 = 5 * low
    grads = {}
    for head, bias in (("sigmoid", -8.0), ("linear", low)):
        torch.manual_seed(0)
        net = AUNet(ModelConfig(**cfg, au_head=head)).train()
        up = net.up_idx.tolist().index(k)
        with torch.no_grad():
            net.head_up.weight.zero_()
            net.head_up.bias[up] = bias
        out = net(torch.rand(2, 1, 32, 32))["aus"][:, k]
        assert torch.allclose(out, torch.full_like(out, 5.0 * low), atol=1e-4)
        ((out - 5.0) ** 2).mean().backward()
        grads[head] = abs(float(net.head_up.bias.grad[up]))
    assert grads["linear"] > 1000 * grads["sigmoid"]

    torch.manual_seed(1)
    net = AUNet(ModelConfig(**cfg, au_head="linear"))
    with torch.no_grad():
        net.head_up.bias.fill_(-3.0)
        net.head_lo.bias.fill_(3.0)
    x = torch.rand(3, 1, 32, 32)
    train_out = net.train()(x)["aus"].detach()
    assert float(train_out.min()) < 0.0 and float(train_out.max()) > 5.0      # unbounded while training
    eval_out = net.eval()(x)["aus"].detach()
    assert float(eval_out.min()) == 0.0 and float(eval_out.max()) == 5.0      # clamped to FACS 0-5 for use
    checkpoint.save(tmp_path / "m.pt", net, {"steps": 0})
    loaded, _ = checkpoint.load(tmp_path / "m.pt")
    assert loaded.cfg.au_head == "linear" and torch.allclose(loaded(x)["aus"], eval_out)
    with pytest.raises(ValueError, match="au_head"):
        ModelConfig(au_head="tanh")


def test_synth_correlations_expose_an_au_the_network_gave_up_on():
    """A near-constant output for a mostly-0 AU has a small MAE but r ~ 0; a tracking output r ~ 1."""
    from annotate.cnn.train import synth_correlations
    from aukit.aus import GANIMATION_AUS

    rng = np.random.default_rng(0)
    true = np.zeros((200, 17))
    true[:, 0] = rng.uniform(0, 5, 200)                              # AU01: tracked
    true[rng.random(200) < 0.1, 3] = 3.0                             # AU05: mostly 0, given up on
    pred = np.zeros_like(true)
    pred[:, 0] = true[:, 0] + rng.normal(0, 0.3, 200)
    pred[:, 3] = 0.3 + rng.normal(0, 0.01, 200)
    r = synth_correlations(pred, true)
    assert r["AU01"] > 0.95 and abs(r["AU05"]) < 0.2
    assert np.abs(pred[:, 3] - true[:, 3]).mean() < np.abs(pred[:, 0] - true[:, 0]).mean() + 0.4
    assert set(r) == {"AU01", "AU05"}                                # constant AUs left out
    pred[:, 3] = 0.0
    assert synth_correlations(pred, true)["AU05"] == 0.0             # a constant output counts as 0
    assert set(GANIMATION_AUS) >= set(r)
