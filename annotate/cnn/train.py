"""Train the ``synthetic-cnn`` AU regressor on rendered datasets (CPU).

    python -m annotate.cnn.train --config configs/annotate/cnn-cpu.yaml [--set optim.steps=200]

Writes ``<run.out_dir>/model.pt`` (EMA weights; :mod:`annotate.cnn.checkpoint`),
``config.yaml`` and ``log.jsonl`` (training loss; at each evaluation the synthetic test-split
MAE per AU and, if ``data.dev_cache`` is set, the emotion AUCs on the real-face *dev* split,
which is for tuning only: the reported AUCs come from ``bench/annotator_auc.py`` on the
identity-disjoint *test* split).

With ``landmarks.enabled`` the landmark branch (:mod:`annotate.cnn.geometry`) is then fitted
on the same renders' MediaPipe landmarks and stored in ``model.pt`` with its per-AU blend;
``--landmarks-only`` does only that, for an already trained ``model.pt``.

Loss: per-AU squared error on the 0-1 scale (FACS / 5), weighted by how much of each AU's
region is visible (``au_occlusion`` of the render), plus small auxiliary terms for the
unoccluded face fraction (BCE) and the head pose (MSE, degrees / 45).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from annotate.cnn import checkpoint
from annotate.cnn.augment import augment, center
from annotate.cnn.config import TrainConfig
from annotate.cnn.data import SynthArrays, load_training_arrays
from annotate.cnn.model import AUNet
from aukit import config as cfgmod
from aukit.aus import FACS_MAX, GANIMATION_AUS, RIG_AUS, rig_to_ganimation
from aukit.stats import column_pearson


def build_parser(prog: str = "python -m annotate.cnn.train") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="YAML preset (e.g. configs/annotate/cnn-cpu.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument("--landmarks-only", action="store_true",
                   help="skip CNN training: fit the landmark branch and add it to <run.out_dir>/model.pt")
    return p


def loss_fn(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], cfg: TrainConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its parts (floats) for one batch."""
    err = (out["aus"] - batch["aus"]) / FACS_MAX
    au = (batch["weights"] * err ** 2).sum() / batch["weights"].sum().clamp_min(1.0)
    vis = F.binary_cross_entropy_with_logits(out["visible"], batch["visible"])
    pose = F.mse_loss(out["pose"], batch["pose"] / 45.0)
    total = au + cfg.optim.w_visible * vis + cfg.optim.w_pose * pose
    return total, {"au": au.item(), "visible": vis.item(), "pose": pose.item()}


def make_batch(data: SynthArrays, weights: np.ndarray, idx: np.ndarray, cfg: TrainConfig,
               g: torch.Generator) -> dict[str, torch.Tensor]:
    """Augmented images (B, 1, S, S) in [0, 1] and targets for samples ``idx``."""
    x, flipped = augment(torch.from_numpy(data.images[idx]), cfg.model.image_size, cfg.augment, g)
    pose = torch.from_numpy(data.pose[idx]).clone()
    pose[flipped, 0] *= -1.0                     # a mirror turns yaw and roll around
    pose[flipped, 2] *= -1.0
    return {"x": x, "aus": torch.from_numpy(data.aus[idx]), "weights": torch.from_numpy(weights[idx]),
            "visible": torch.from_numpy(data.visible[idx]), "pose": pose}


@torch.no_grad()
def predict_arrays(model: AUNet, images: np.ndarray, size: int, batch: int = 256) -> np.ndarray:
    """(N, 22) rig AUs for uint8 (N, L, L) grayscale images (centre view, no mirror)."""
    model.eval()
    outs = [model(center(torch.from_numpy(images[i:i + batch]), size))["aus"]
            for i in range(0, len(images), batch)]
    return torch.cat(outs).numpy() if outs else np.zeros((0, len(RIG_AUS)), np.float32)


def evaluate(model: AUNet, val: SynthArrays, dev: Any, cfg: TrainConfig) -> dict[str, Any]:
    """Synthetic test-split MAE (per GANimation AU and mean) and real dev AUCs."""
    from annotate.evalset import emotion_aucs

    res: dict[str, Any] = {}
    if len(val):
        pred = rig_to_ganimation(predict_arrays(model, val.images, cfg.model.image_size).astype(np.float64))
        true = rig_to_ganimation(val.aus.astype(np.float64))
        res["synth_mae"] = float(np.abs(pred - true).mean())
        res["synth_r"] = synth_correlations(pred, true)
    if dev is not None:
        from annotate.cnn.annotator import predict_crops

        au17, _ = predict_crops(model, dev.crops)
        res["dev_auc"] = {k: round(v["auc"], 4) for k, v in emotion_aucs(au17, dev.emotion).items()}
    model.train()
    return res


def synth_correlations(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Per-AU Pearson r between predicted and exact (N, 17) AUs of the held-out renders. Why:
    the MAE hides an AU the network has given up on (a near-constant output scores a small
    MAE when the AU is mostly 0); its r stays near 0. AUs constant in the set are left out."""
    if len(true) < 3:
        return {}
    r = column_pearson(pred, true)           # NaN where a column is constant
    return {name: round(float(r[k]), 3) if np.isfinite(r[k]) else 0.0   # a constant output: 0
            for k, name in enumerate(GANIMATION_AUS) if true[:, k].std() > 0}


def load_dev(cfg: TrainConfig) -> Any:
    """A fixed subset of the real-face dev split (all non-neutral faces, capped neutral), or None
    when no ``data.dev_cache`` is configured. A configured cache that is missing is an error, not a
    silent fallback: without it ``best_dev`` and the dev-chosen blend quietly become another recipe."""
    if not cfg.data.dev_cache:
        return None
    if not Path(cfg.data.dev_cache).is_file():
        raise FileNotFoundError(
            f"data.dev_cache {cfg.data.dev_cache} not found: build it with `python -m annotate.evalset cache "
            f"--real-faces DIR --out {cfg.data.dev_cache}`, or set data.dev_cache=null to train without the dev "
            "evaluation (then run.keep best_dev keeps the last step and the blend is even)")
    from annotate.evalset import load_cache

    fs = load_cache(Path(cfg.data.dev_cache))
    dev = fs.subset(fs.split == "dev")
    rng = np.random.default_rng(0)
    keep = np.zeros(len(dev.names), bool)
    for emo in np.unique(dev.emotion):
        idx = np.flatnonzero(dev.emotion == emo)
        keep[rng.choice(idx, min(len(idx), cfg.data.dev_max // 2), replace=False)] = True
    return dev.subset(keep)


def train(cfg: TrainConfig) -> Path:
    """Run training; returns the checkpoint path."""
    torch.set_num_threads(cfg.optim.threads)
    torch.manual_seed(cfg.run.seed)
    out = Path(cfg.run.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(cfgmod.dump_yaml(cfg))
    dev = load_dev(cfg)   # first: a missing cache fails before minutes of decoding
    data = load_training_arrays(cfg.data.datasets, cfg.data.load_size, cfg.data.cache_dir, cfg.data.max_samples)
    trainset, val = data.take(np.flatnonzero(~data.test)), data.take(np.flatnonzero(data.test)[:2000])
    weights = trainset.weights(cfg.data.occlusion_floor)
    p = np.where(trainset.prototype, cfg.data.prototype_boost, 1.0)
    n_drawn = int((p > 0).sum())        # prototype_boost 0 leaves the prototypes out
    if not n_drawn:
        raise ValueError("every training render is an emotion prototype and data.prototype_boost is 0")
    p = p / p.sum()
    print(f"training on {n_drawn} rendered samples ({len(val)} for validation)"
          f"{'' if dev is None else f', dev AUCs on {len(dev.names)} real faces'}", flush=True)

    # channels-last weights: ~2x faster convolutions on this CPU (the input follows in forward)
    model = AUNet(cfg.model).to(memory_format=torch.channels_last).train()
    ema = copy.deepcopy(model).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.optim.lr, total_steps=cfg.optim.steps, pct_start=0.15)
    rng, g = np.random.default_rng(cfg.run.seed), torch.Generator().manual_seed(cfg.run.seed)
    info: dict[str, Any] = {"datasets": list(cfg.data.datasets), "samples": n_drawn,
                            "config": cfgmod.to_dict(cfg)}
    t0, step, log = time.time(), 0, open(out / "log.jsonl", "a")
    best = float("-inf")
    for step in range(1, cfg.optim.steps + 1):
        batch = make_batch(trainset, weights, rng.choice(len(trainset), cfg.optim.batch_size, p=p), cfg, g)
        loss, parts = loss_fn(model(batch["x"]), batch, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        _ema_update(ema, model, cfg.optim.ema if step > 100 else 0.0)
        minutes = (time.time() - t0) / 60
        stop = cfg.optim.minutes and minutes >= cfg.optim.minutes
        if step % cfg.run.log_every == 0:
            _log(log, {"step": step, "minutes": round(minutes, 2), "loss": round(float(loss.detach()), 5), **parts})
        if step % cfg.run.eval_every == 0 or step == cfg.optim.steps or stop:
            metrics = evaluate(ema, val, dev, cfg)
            _log(log, {"step": step, "minutes": round(minutes, 2), "eval": metrics})
            info.update(steps=step, minutes=round(minutes, 2), metrics=metrics)
            checkpoint.save(out / "last.pt", ema, info)
            score = dev_score(metrics)
            if cfg.run.keep == "last" or dev is None or score > best:
                best = score
                checkpoint.save(out / "model.pt", ema, {**info, "selected_by": _selected_by(cfg, dev)})
        if stop:
            break
    log.close()
    if cfg.landmarks.enabled:
        fit_landmark_branch(cfg, out / "model.pt", dev)
    return out / "model.pt"


def fit_landmark_branch(cfg: TrainConfig, path: Path, dev: Any) -> dict[str, Any]:
    """Fit the landmark branch (:mod:`annotate.cnn.geometry`) on the renders' MediaPipe
    landmarks, choose its per-AU fusion weights, and add both to the checkpoint ``path``."""
    from annotate.cnn import geometry
    from annotate.cnn.annotator import predict_crops
    from annotate.cnn.render_landmarks import training_landmarks
    from annotate.evalset import emotion_aucs

    t0 = time.time()
    model, _ = checkpoint.load(path)              # fail before minutes of MediaPipe, not after
    lm, au17 = training_landmarks(cfg.data.datasets, cfg.data.cache_dir, cfg.landmarks.max_occluded,
                                  cfg.landmarks.workers, cfg.landmarks.exclude, cfg.data.max_samples)
    try:   # fit_head refuses too few renders for its PCA; say which config keys decide that
        head = geometry.fit_head(lm, au17, cfg.landmarks.n_components, cfg.landmarks.alpha)
    except ValueError as exc:
        raise cfgmod.ConfigError(
            f"landmark branch on {len(lm)} usable renders (a face found, at most landmarks.max_occluded "
            f"occluded, not in landmarks.exclude): {exc}; render more, or lower "
            f"landmarks.n_components={cfg.landmarks.n_components}") from exc
    weight = np.full(len(GANIMATION_AUS), 0.5)
    info: dict[str, Any] = {"renders": len(lm), "excluded": list(cfg.landmarks.exclude),
                            "fusion": cfg.landmarks.fusion}
    if cfg.landmarks.fusion == "dev" and dev is None:
        info["fusion"] = "even (no data.dev_cache to choose on)"
    elif dev is not None:
        cnn17, lm17 = predict_crops(model, dev.crops)[0], head.predict(dev.landmarks)
        if cfg.landmarks.fusion == "dev":
            weight = geometry.search_weights(cnn17, lm17, dev.emotion, TARGETED)
        for name, au in (("cnn", cnn17), ("landmarks", lm17), ("fused", geometry.fuse(cnn17, lm17, weight))):
            info[f"dev_auc_{name}"] = {k: round(v["auc"], 4) for k, v in emotion_aucs(au, dev.emotion).items()}
    info["cnn_weight"] = {a: float(w) for a, w in zip(GANIMATION_AUS, weight)}
    info["minutes"] = round((time.time() - t0) / 60, 2)
    checkpoint.attach_landmark_head(path, head, weight, info)
    print(json.dumps({"landmark_branch": info}), flush=True)
    return info


#: emotions whose dev AUC selects a checkpoint (disgust is reported, not targeted)
TARGETED = ("happiness", "surprise", "sadness", "anger")


def dev_score(metrics: dict[str, Any]) -> float:
    """Mean dev-half AUC over :data:`TARGETED` (-inf without dev metrics)."""
    auc = metrics.get("dev_auc") or {}
    vals = [auc[e] for e in TARGETED if auc.get(e) is not None and np.isfinite(auc[e])]
    return float(np.mean(vals)) if vals else float("-inf")


def _selected_by(cfg: TrainConfig, dev: Any) -> str:
    return "best_dev" if cfg.run.keep == "best_dev" and dev is not None else "last"


@torch.no_grad()
def _ema_update(ema: AUNet, model: AUNet, decay: float) -> None:
    """Exponential moving average of the weights; BatchNorm statistics are copied."""
    for e, m in zip(ema.parameters(), model.parameters()):
        e.mul_(decay).add_(m.detach(), alpha=1.0 - decay)
    for e, m in zip(ema.buffers(), model.buffers()):
        e.copy_(m)


def _log(fh: Any, record: dict[str, Any]) -> None:
    line = json.dumps(record)
    fh.write(line + "\n")
    fh.flush()
    print(line, flush=True)


def main(args: argparse.Namespace) -> int:
    try:
        cfg = cfgmod.load(TrainConfig, args.config, args.set)
        if not cfg.data.datasets:
            raise cfgmod.ConfigError("data.datasets: give at least one rendered dataset folder")
    except cfgmod.ConfigError as exc:
        print(f"error: {exc}")
        return 2
    if args.dry_run:
        print(cfgmod.dump_yaml(cfg), end="")
        return 0
    if args.landmarks_only:
        path = Path(cfg.run.out_dir) / "model.pt"
        try:
            fit_landmark_branch(cfg, path, load_dev(cfg))
        except (checkpoint.CheckpointError, FileNotFoundError, ValueError) as exc:
            print(f"error: {exc}")
            return 2
    else:
        try:
            path = train(cfg)
        except FileNotFoundError as exc:   # a dataset folder or the dev cache is missing
            print(f"error: {exc}")
            return 2
        except cfgmod.ConfigError as exc:  # the landmark branch, after the CNN was saved
            print(f"error: {exc}; the CNN is saved in {cfg.run.out_dir}: add the branch with --landmarks-only")
            return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(build_parser().parse_args()))
