"""The trainer's configuration: frozen dataclasses built from YAML plus ``--set`` overrides.

Defaults are the official GANimation settings (see docs/train.md for the mapping). The
resolved config is written to ``<run>/config.yaml`` and stored in every checkpoint, so a
resumed run continues with exactly the settings it started with.

Units: learning rates per optimizer step; ``batch_size`` is the *global* batch (split
evenly over data-parallel processes); AU noise is on the network's 0-1 scale (FACS / 5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Optional

from aukit import config as cfgmod
from aukit.config import check
from train.networks import ModelConfig

SourceFormat = Literal["auto", "ganimation", "openface"]


@dataclass(frozen=True)
class SourceConfig:
    """One dataset folder to train on."""

    name: str                       # label for --mix, logs and statistics (e.g. synth, real)
    path: Path
    format: SourceFormat = "auto"   # auto: GANimation folder if it has an AU table, else OpenFace
    weight: Optional[float] = None  # sampling weight; all None = proportional to image count

    def __post_init__(self) -> None:
        check(bool(self.name) and self.name.replace("_", "").replace("-", "").isalnum(),
              f"data source name {self.name!r} must be alphanumeric (with _ or -)")
        check(self.weight is None or (self.weight >= 0 and math.isfinite(self.weight)),
              f"data source {self.name!r}: weight must be >= 0, got {self.weight}")


@dataclass(frozen=True)
class DataConfig:
    """What to read and how to draw batches."""

    sources: tuple[SourceConfig, ...] = ()
    split: Literal["train", "test"] = "train"
    flip: bool = True                              # random horizontal flip (official)
    # Target AUs: "shuffle" = another training sample's AUs + noise (official);
    # "source" = AUs of a sample of `target_source` (e.g. the rendered AU distribution) + noise.
    target_sampler: Literal["shuffle", "source"] = "shuffle"
    target_source: Optional[str] = None
    target_noise: float = 0.1                      # U(-n, n) added on the 0-1 scale
    # "memory": decode every image once into a uint8 tensor; "stream": decode per batch in
    # worker processes; "auto": memory when it fits in cache_max_gb.
    cache: Literal["auto", "memory", "stream"] = "auto"
    cache_max_gb: float = 4.0
    workers: int = 2                               # decoding processes (stream mode/preload)

    def __post_init__(self) -> None:
        names = [s.name for s in self.sources]
        check(len(set(names)) == len(names), f"data source names must be unique, got {names}")
        weights = [s.weight for s in self.sources]
        check(all(w is None for w in weights) or all(w is not None for w in weights),
              "give a sampling weight for every data source or for none (see --mix)")
        check(not any(w is not None for w in weights) or sum(weights) > 0,  # type: ignore[arg-type]
              "data source weights must not all be zero")
        if self.target_sampler == "source":
            check(self.target_source in names,
                  f"data.target_source must name a data source ({names}) when "
                  f"data.target_sampler is 'source', got {self.target_source!r}")
        check(0 <= self.target_noise <= 1, "data.target_noise must be in [0, 1]")
        check(self.workers >= 0, "data.workers must be >= 0")
        check(self.cache_max_gb > 0, "data.cache_max_gb must be > 0")


@dataclass(frozen=True)
class LossConfig:
    """Loss weights. ``lambda_cond`` weighs the *per-element* mean squared AU error.

    The official code uses 4000 * MSE / batch, i.e. a per-element weight of 4000 / batch
    (160 at its batch of 25). Set ``lambda_cond_official`` to reproduce that rule at any
    batch size: it then overrides ``lambda_cond`` with ``lambda_cond_official / batch``.
    """

    lambda_cond: float = 160.0
    lambda_cond_official: Optional[float] = None
    lambda_cyc: float = 10.0
    lambda_mask: float = 0.1
    lambda_tv: float = 1e-5
    lambda_gp: float = 10.0
    # "separate": the official two critic optimizer steps (losses, then penalty);
    # "combined": one step on losses + penalty.
    gp_mode: Literal["separate", "combined"] = "separate"

    def __post_init__(self) -> None:
        for name in ("lambda_cond", "lambda_cyc", "lambda_mask", "lambda_tv", "lambda_gp"):
            check(getattr(self, name) >= 0, f"loss.{name} must be >= 0")
        check(self.lambda_cond_official is None or self.lambda_cond_official >= 0,
              "loss.lambda_cond_official must be >= 0")

    def cond_weight(self, batch_size: int) -> float:
        """The per-element AU-regression weight actually used at global ``batch_size``."""
        if self.lambda_cond_official is not None:
            return self.lambda_cond_official / batch_size
        return self.lambda_cond


@dataclass(frozen=True)
class OptimConfig:
    """Adam, the 5:1 critic/generator schedule, and the linear learning-rate decay."""

    batch_size: int = 25
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    n_critic: int = 5                  # one generator step every n_critic critic steps
    epochs_constant: int = 20
    epochs_decay: int = 10             # linear decay of both learning rates to zero
    epoch_images: Optional[int] = None  # images per epoch; None = all training images

    def __post_init__(self) -> None:
        check(self.batch_size >= 1, "optim.batch_size must be >= 1")
        check(self.lr_g >= 0 and self.lr_d >= 0, "optim learning rates must be >= 0")
        check(all(0 <= b < 1 for b in self.betas), "optim.betas must be in [0, 1)")
        check(self.n_critic >= 1, "optim.n_critic must be >= 1")
        check(self.epochs_constant >= 0 and self.epochs_decay >= 0
              and self.epochs_constant + self.epochs_decay >= 1,
              "optim.epochs_constant/epochs_decay must be >= 0 and not both 0")
        check(self.epoch_images is None or self.epoch_images >= 1,
              "optim.epoch_images must be >= 1")


@dataclass(frozen=True)
class RunConfig:
    """Where results go, how often, and on what device."""

    out_dir: Path = Path("runs/ganimation")
    seed: int = 0
    device: str = "auto"               # auto | cpu | cuda | cuda:N | mps
    log_every: int = 50                # critic steps between metric lines (one sync each)
    image_every: int = 1000            # steps between image grids
    ckpt_every: int = 2000             # steps between checkpoints (also at the end/SIGINT)
    keep_every: int = 0                # also keep a numbered copy every N steps (0: never)
    preview_images: int = 6
    channels_last: Literal["auto", "on", "off"] = "auto"  # auto: on for CUDA only
    tf32: bool = True                  # CUDA matmul/conv in TF32
    # CPU threads per process (0: PyTorch's default). On a shared machine 1 can be much
    # faster than 2: OpenMP threads stall when another process holds one of the cores.
    cpu_threads: int = 0
    progress: bool = True              # tqdm bar

    def __post_init__(self) -> None:
        check(self.seed >= 0, "run.seed must be >= 0")
        for name in ("log_every", "image_every", "ckpt_every"):
            check(getattr(self, name) >= 1, f"run.{name} must be >= 1")
        check(self.keep_every >= 0, "run.keep_every must be >= 0")
        check(self.cpu_threads >= 0, "run.cpu_threads must be >= 0")
        check(0 <= self.preview_images <= 64, "run.preview_images must be in [0, 64]")


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)


def load_config(path: str | Path | None = None, overrides: tuple[str, ...] | list[str] = ()
                ) -> TrainConfig:
    """Load a preset (optional) and apply ``a.b=c`` overrides; raises ``ConfigError``."""
    return cfgmod.load(TrainConfig, path, list(overrides))


def with_sources(cfg: TrainConfig, specs: list[str], mix: str | None) -> TrainConfig:
    """Apply ``--data NAME:DIR`` (replacing the preset's sources) and ``--mix a=0.5,b=0.5``."""
    sources = list(cfg.data.sources)
    if specs:
        # A preset source of the same name lends its weight (mixed.yaml's 0.5/0.5).
        preset = {s.name: s for s in sources}
        sources = []
        for spec in specs:
            src = _parse_source(spec)
            if src.name in preset:
                src = replace(src, weight=preset[src.name].weight)
            sources.append(src)
    if mix:
        weights = _parse_mix(mix)
        names = [s.name for s in sources]
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise cfgmod.ConfigError(f"--mix names unknown data source(s) {unknown}; "
                                     f"sources are {names}")
        sources = [replace(s, weight=weights.get(s.name, 0.0)) for s in sources]
    try:
        return replace(cfg, data=replace(cfg.data, sources=tuple(sources)))
    except ValueError as exc:
        raise cfgmod.ConfigError(str(exc)) from exc


def _parse_source(spec: str) -> SourceConfig:
    name, sep, path = spec.partition(":")
    if not sep or not name or not path:
        raise cfgmod.ConfigError(f"--data {spec!r}: expected NAME:DIR, e.g. synth:data/synth")
    fmt = "auto"
    for suffix in ("@ganimation", "@openface"):
        if path.endswith(suffix):
            path, fmt = path[: -len(suffix)], suffix[1:]
    return cfgmod.from_dict(SourceConfig, {"name": name, "path": path, "format": fmt}, "data")


def _parse_mix(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise cfgmod.ConfigError(f"--mix: expected NAME=WEIGHT, got {part!r}")
    return out


def schedule_steps(optim: OptimConfig, n_train_images: int) -> tuple[int, int]:
    """``(total critic steps, steps in the decay phase)`` for a training set size."""
    per_epoch = math.ceil((optim.epoch_images or n_train_images) / optim.batch_size)
    return (optim.epochs_constant + optim.epochs_decay) * per_epoch, optim.epochs_decay * per_epoch


def lr_factor(step: int, total: int, decay: int) -> float:
    """Multiplier of the base learning rates at critic step ``step`` (0-based).

    Constant, then linear to zero over the last ``decay`` steps (the official code drops
    it once per epoch; per step is the same line without the staircase).
    """
    if decay <= 0 or step < total - decay:
        return 1.0
    return max(0.0, (total - step) / decay)
