"""The GANimation training loop (one function, :func:`training_loop`) and its two steps.

Schedule: one critic step per batch; every ``n_critic``-th batch (counted in steps, never
by time) is also a generator step, on the same batch, after the critic step.

Equivalences with the official ``optimize_parameters`` that save work without changing
the result:
* on critic-only steps the generator runs under ``no_grad`` (its output is detached);
* on generator steps ``G(x | y_t)`` is computed once, with its graph, and used both
  detached by the critic step and by the generator step (the generator does not change
  in between);
* the critic sees real and fake images in one batched forward (it has no batch-coupled
  layers, so this equals two calls);
* the critic's parameters are frozen while the generator's loss is backpropagated
  through it, so no critic weight gradients are computed that would be thrown away.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from aukit import atomic, config as cfgmod
from train import checkpoint as ckpt_mod
from train import ddp
from train.config import TrainConfig, lr_factor, schedule_steps
from train.data import (Batch, Mixture, batches, cache_fits, load_source, preload,
                        preview_batch, source_counts, to_device)
from train.logs import Meter, RunLogger, non_finite, preview_grid
from train.losses import critic_loss, generator_loss, gradient_penalty
from train.networks import Critic, Generator, GenOut


class TrainingDiverged(RuntimeError):
    """A loss or parameter became NaN/Inf; the last good checkpoint was kept."""


@dataclass
class Nets:
    gen: Generator
    critic: Critic
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer


@dataclass
class RunResult:
    run_dir: Path
    step: int                 # critic steps completed
    total_steps: int
    interrupted: bool = False
    last: dict[str, float] = field(default_factory=dict)


def critic_step(nets: Nets, cfg: TrainConfig, real: torch.Tensor, fake: torch.Tensor,
                batch: Batch, device: torch.device, lambda_cond: float) -> dict[str, torch.Tensor]:
    """One critic update (two optimizer steps in the official ``separate`` GP mode)."""
    n = real.shape[0]
    real_aus = batch.real.to(device, non_blocking=True)
    alpha = batch.alpha.to(device, non_blocking=True)
    realism, aus = nets.critic(torch.cat([real, fake]))
    loss, terms = critic_loss(realism[:n], realism[n:], aus[:n], real_aus, lambda_cond)
    if cfg.loss.gp_mode == "combined":
        gp, gp_terms = gradient_penalty(nets.critic, real, fake, alpha, cfg.loss.lambda_gp)
        loss = loss + gp
        terms |= gp_terms
    _optimize(nets.opt_d, loss, nets.critic)
    if cfg.loss.gp_mode == "separate":
        # Official: the penalty is a second step, on the critic already updated above.
        gp, gp_terms = gradient_penalty(nets.critic, real, fake, alpha, cfg.loss.lambda_gp)
        _optimize(nets.opt_d, gp, nets.critic)
        terms |= gp_terms
    return terms


def generator_step(nets: Nets, cfg: TrainConfig, real: torch.Tensor, out: GenOut,
                   batch: Batch, device: torch.device, lambda_cond: float
                   ) -> dict[str, torch.Tensor]:
    """One generator update; ``out`` = ``G(real | target)`` with its graph."""
    target = batch.target.to(device, non_blocking=True)
    real_aus = batch.real.to(device, non_blocking=True)
    # The official TV term is a *sum* over the batch. Each rank sums its share only and
    # gradients are averaged over ranks, so scale by the world size to get the global sum.
    lambda_tv = cfg.loss.lambda_tv * ddp.world_size()
    nets.critic.requires_grad_(False)
    try:
        realism, aus = nets.critic(out.image)
        cycle = nets.gen(out.image, real_aus)
        loss, terms = generator_loss(
            realism, aus, target, cycle.image, real, out.attention, cycle.attention,
            lambda_cond=lambda_cond, lambda_cyc=cfg.loss.lambda_cyc,
            lambda_mask=cfg.loss.lambda_mask, lambda_tv=lambda_tv)
        _optimize(nets.opt_g, loss, nets.gen)
    finally:
        nets.critic.requires_grad_(True)
    return terms


def train_step(nets: Nets, cfg: TrainConfig, batch: Batch, device: torch.device,
               channels_last: bool, lambda_cond: float) -> dict[str, torch.Tensor]:
    """Critic step on ``batch``, plus a generator step on every ``n_critic``-th step."""
    real = to_device(batch.images, device, channels_last)
    target = batch.target.to(device, non_blocking=True)
    g_turn = (batch.step + 1) % cfg.optim.n_critic == 0
    # The generator's graph is only needed when it is trained on this batch.
    with torch.set_grad_enabled(g_turn):
        out = nets.gen(real, target)
    terms = critic_step(nets, cfg, real, out.image.detach(), batch, device, lambda_cond)
    if g_turn:
        terms |= generator_step(nets, cfg, real, out, batch, device, lambda_cond)
    terms["attention_mean"] = out.attention.detach().mean()
    return terms


def _optimize(opt: torch.optim.Optimizer, loss: torch.Tensor, module: torch.nn.Module) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    ddp.average_gradients(list(module.parameters()))
    opt.step()


def build_nets(cfg: TrainConfig, device: torch.device, channels_last: bool) -> Nets:
    """Both networks (seeded init) and their Adam optimizers."""
    torch.manual_seed(cfg.run.seed)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    gen = Generator(cfg.model).to(device, memory_format=fmt)
    critic = Critic(cfg.model).to(device, memory_format=fmt)
    # Fused Adam: one kernel per step instead of a loop over tensors (10x faster on CPU).
    fused = {"fused": True} if device.type in ("cuda", "cpu") else {}
    o = cfg.optim
    opt_g = torch.optim.Adam(gen.parameters(), lr=o.lr_g, betas=o.betas, **fused)
    opt_d = torch.optim.Adam(critic.parameters(), lr=o.lr_d, betas=o.betas, **fused)
    return Nets(gen, critic, opt_g, opt_d)


def prepare_data(cfg: TrainConfig) -> Mixture:
    """Read every source (fails early, with the folder named, on bad input)."""
    return Mixture([load_source(s, cfg.data.split) for s in cfg.data.sources], cfg.data)


class _StopSignal:
    """SIGINT/SIGTERM set a flag; the loop saves a checkpoint and exits at the step end."""

    def __init__(self) -> None:
        self.fired = False
        self._old: dict[int, object] = {}

    def __enter__(self) -> _StopSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: no handlers, no graceful stop
                pass
        return self

    def _handle(self, signum: int, frame: object) -> None:
        self.fired = True
        signal.signal(signum, self._old.get(signum, signal.SIG_DFL))  # 2nd press: hard stop

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class _Tracker:
    """One log interval: loss terms summed on the device, images per source, wall time."""

    def __init__(self, sources: list[str], batch_size: int, epoch_images: int):
        self.sources, self.batch_size, self.epoch_images = sources, batch_size, epoch_images
        self.meter = Meter()
        self.counts = np.zeros(len(sources), dtype=np.int64)   # since start, for mix/<name>
        self.steps, self.t0 = 0, time.perf_counter()

    def add(self, terms: dict[str, torch.Tensor], batch: Batch) -> None:
        self.meter.add(terms)
        self.counts += source_counts(batch.source, len(self.sources))
        self.steps += 1

    def flush(self, step: int, last_good: Path) -> dict[str, float]:
        """Interval means (one device sync), throughput and mix; raises on NaN/Inf."""
        keys, values = self.meter.stacked()
        vals = dict(zip(keys, ddp.all_mean(values).tolist())) if values is not None else {}
        bad = non_finite(vals)
        if bad:
            raise TrainingDiverged(
                f"non-finite loss terms {bad} between steps {step - self.steps} and {step}; "
                f"stopped without saving. The last good checkpoint is {last_good} (if any). "
                "Try a lower learning rate or check the data.")
        now = time.perf_counter()
        out = {f"loss/{k}" if k.startswith(("d_", "g_")) else k: v for k, v in vals.items()}
        out["perf/img_per_s"] = self.steps * self.batch_size / max(now - self.t0, 1e-9)
        out["epoch"] = step * self.batch_size / self.epoch_images
        out |= {f"mix/{n}": float(c / max(1, self.counts.sum()))
                for n, c in zip(self.sources, self.counts)}
        self.meter.reset()
        self.steps, self.t0 = 0, now
        return out


def _all_finite(nets: Nets) -> bool:
    params = list(nets.gen.parameters()) + list(nets.critic.parameters())
    return bool(torch.stack([p.detach().isfinite().all() for p in params]).all())


def training_loop(cfg: TrainConfig, *, resume: str | Path | None = None,
                  stop_after: int | None = None) -> RunResult:
    """Train GANimation as configured; returns where it stopped.

    ``resume``: a checkpoint file or run directory to continue from (its config must match
    ``cfg.model``). ``stop_after``: save and stop once this many critic steps are done (the
    schedule still spans the full run, so a later resume continues it exactly).
    """
    info = ddp.init(cfg.run.device)
    device = info.device
    if cfg.run.cpu_threads:
        torch.set_num_threads(cfg.run.cpu_threads)
    channels_last = cfg.run.channels_last == "on" or (
        cfg.run.channels_last == "auto" and device.type == "cuda")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = cfg.run.tf32

    mix = prepare_data(cfg)
    total, decay = schedule_steps(cfg.optim, len(mix))
    lambda_cond = cfg.loss.cond_weight(cfg.optim.batch_size)
    if cfg.optim.batch_size % info.world:
        raise cfgmod.ConfigError(f"optim.batch_size={cfg.optim.batch_size} must be divisible "
                                 f"by the number of processes ({info.world})")
    run_dir = Path(cfg.run.out_dir)
    ckpt_dir = run_dir / "checkpoints"
    if resume is None and (ckpt_dir / ckpt_mod.LATEST).exists():
        raise FileExistsError(f"{run_dir} already holds a run; resume it with --resume "
                              f"{run_dir} or choose another --out")

    nets = build_nets(cfg, device, channels_last)
    start = 0
    if resume is not None:
        state = ckpt_mod.load(resume, map_location=device)
        if state["config"]["model"] != cfgmod.to_dict(cfg.model):
            raise cfgmod.ConfigError("checkpoint was trained with another model config")
        nets.gen.load_state_dict(state["generator"])
        nets.critic.load_state_dict(state["critic"])
        nets.opt_g.load_state_dict(state["opt_g"])
        nets.opt_d.load_state_dict(state["opt_d"])
        ckpt_mod.restore_rng(state["rng"])
        start = int(state["step"])
    ddp.broadcast_params(nets.gen)
    ddp.broadcast_params(nets.critic)

    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic.write_text(run_dir / "config.yaml", cfgmod.dump_yaml(cfg))
        atomic.write_json(run_dir / "data.json", mix.stats())
    log = RunLogger(run_dir, info.is_main)
    log.event("resume" if resume else "start", step=start, total_steps=total,
              world=info.world, device=str(device), lambda_cond_per_element=lambda_cond,
              sources=mix.stats())
    log.text("data", "\n\n".join(f"{s['source']}: {s['n_images']} images, p={s['prob']:.3f}, "
                                 f"AU mean {s['au_mean']}" for s in mix.stats()), start)

    cache = None
    if cache_fits(mix, cfg.data, cfg.model.image_size):
        cache = preload(mix, cfg.model.image_size, cfg.data.workers)
    end = min(total, stop_after) if stop_after is not None else total
    stream = batches(mix, seed=cfg.run.seed, batch=cfg.optim.batch_size,
                     size=cfg.model.image_size, start=start, stop=end, rank=info.rank,
                     world=info.world, cache=cache, workers=cfg.data.workers,
                     pin_memory=device.type == "cuda")
    preview = preview_batch(mix, cfg.run.seed, cfg.run.preview_images, cfg.model.image_size) \
        if info.is_main and cfg.run.preview_images else None

    def save(step: int) -> None:
        if info.is_main:
            kw = dict(step=step, config=cfg, generator=nets.gen, critic=nets.critic,
                      opt_g=nets.opt_g, opt_d=nets.opt_d)
            ckpt_mod.save(ckpt_dir / ckpt_mod.LATEST, **kw)
            if cfg.run.keep_every and step % cfg.run.keep_every == 0:
                ckpt_mod.save(ckpt_dir / f"step_{step:07d}.pt", **kw)
        ddp.barrier()

    tracker = _Tracker(mix.names, cfg.optim.batch_size, cfg.optim.epoch_images or len(mix))
    last: dict[str, float] = {}
    bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True,
               disable=not (info.is_main and cfg.run.progress))
    step = start
    interrupted = False
    try:
        with _StopSignal() as stop:
            for batch in stream:
                # --- one training step -----------------------------------------------------
                f = lr_factor(step, total, decay)
                for g in nets.opt_g.param_groups:
                    g["lr"] = cfg.optim.lr_g * f
                for g in nets.opt_d.param_groups:
                    g["lr"] = cfg.optim.lr_d * f
                assert batch.step == step, (batch.step, step)  # loader and schedule agree
                tracker.add(train_step(nets, cfg, batch, device, channels_last, lambda_cond), batch)
                step += 1
                bar.update(1)

                # --- bookkeeping: logs (one sync), images, checkpoints, stop requests --------
                stopping = ddp.any_flag(stop.fired, device) if info.world > 1 else stop.fired
                ckpt_now = step % cfg.run.ckpt_every == 0 or step == end or stopping
                # Checkpoint steps are always log steps: the NaN check runs before any save.
                if step % cfg.run.log_every == 0 or ckpt_now:
                    last = tracker.flush(step, ckpt_dir / ckpt_mod.LATEST)
                    last |= {"lr/g": cfg.optim.lr_g * f, "lr/d": cfg.optim.lr_d * f}
                    log.scalars(step, last)
                    bar.set_postfix(img_s=f"{last['perf/img_per_s']:.1f}")
                if preview is not None and step % cfg.run.image_every == 0:
                    log.image(step, _preview(nets, preview, device, channels_last))
                if ckpt_now:
                    if not _all_finite(nets):
                        raise TrainingDiverged(f"parameters became non-finite by step {step}; "
                                               f"kept the last good checkpoint")
                    save(step)
                if stopping:
                    interrupted = True
                    log.event("interrupted", step=step)
                    break
        log.event("stop", step=step, interrupted=interrupted)
    finally:  # a diverged run still closes its logs (the last good checkpoint stays)
        bar.close()
        log.close()
    return RunResult(run_dir, step, total, interrupted, last)


@torch.no_grad()
def _preview(nets: Nets, preview: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
             device: torch.device, channels_last: bool) -> "object":
    images, real_aus, target = preview
    real = to_device(images, device, channels_last)
    out = nets.gen(real, target.to(device))
    cyc = nets.gen(out.image, real_aus.to(device))
    return preview_grid(real, out.attention, out.color, out.image, cyc.image)
