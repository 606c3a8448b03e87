"""Training configuration of the ``synthetic-cnn`` annotator (frozen, via :mod:`aukit.config`).

YAML keys are the field names (sections ``data``, ``model``, ``augment``, ``optim``,
``run``, ``landmarks``); ``--set section.key=value`` overrides. Units: intensities on the FACS 0-5 scale
unless a field says otherwise; sizes in pixels; angles in degrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from annotate.cnn.model import ModelConfig
from aukit.config import check, check_range


@dataclass(frozen=True)
class DataConfig:
    """Rendered datasets to train on (``ausynth render`` folders, read from disk; partially
    rendered folders are fine: a sample counts once its ``meta/<id>.json`` exists).

    ``load_size``: images are decoded once, to grayscale at this side, and kept in memory
    (uint8); augmentation then crops/zooms them to ``model.image_size``. ``cache_dir``:
    where the decoded arrays are stored between runs (None: no cache file).
    ``prototype_boost``: sampling weight of emotion-prototype samples relative to the
    others; 0 leaves them out (the preset: their AUs always come together, so a network
    learns one AU from another's motion; docs/annotators.md). ``occlusion_floor``:
    an AU whose region is hidden by a fraction ``f`` gets loss weight ``max(1 - f,
    occlusion_floor)``. ``max_samples``: use only the first this many renders of the concatenated
    folders (0 = all), in the CNN and the landmark branch alike.
    """

    datasets: tuple[str, ...] = ()
    load_size: int = 104
    cache_dir: Optional[str] = "runs/cnn_cache"
    prototype_boost: float = 1.0
    occlusion_floor: float = 0.0
    max_samples: int = 0
    dev_cache: Optional[str] = None       # real-face cache (annotate.evalset) for dev AUCs
    dev_max: int = 2000

    def __post_init__(self) -> None:
        check(32 <= self.load_size <= 512, f"data.load_size must be in [32, 512], got {self.load_size}")
        check(self.prototype_boost >= 0, "data.prototype_boost must be >= 0 (0: leave the prototypes out)")
        check(0.0 <= self.occlusion_floor <= 1.0, "data.occlusion_floor must be in [0, 1]")
        check(self.max_samples >= 0, "data.max_samples must be >= 0")


@dataclass(frozen=True)
class AugmentConfig:
    """Batch augmentation (probabilities ``p_*``; ranges as [min, max]). Why each exists:
    docs/annotators.md (the render-to-photo gap: grey photos, low resolution, blur, uneven
    light, crops padded by edge replication, occlusion)."""

    flip: bool = True
    scale: tuple[float, float] = (0.9, 1.1)        # zoom of the crop
    shift: float = 0.05                            # translation, fraction of the side
    rotate: float = 10.0                           # degrees
    p_lowres: float = 0.5                          # lighter (0.2 at 0.6-0.95) or 0 measured no better
    lowres: tuple[float, float] = (0.35, 0.9)      # downscale factor before upscaling back
    gamma: tuple[float, float] = (0.6, 1.6)
    ramp: float = 0.6                              # linear illumination ramp amplitude
    p_noise: float = 0.5
    noise: tuple[float, float] = (0.0, 0.05)       # std on the 0-1 scale
    p_border: float = 0.3                          # edge-replicated strip (padded photo crops)
    border: tuple[float, float] = (0.03, 0.25)     # strip width, fraction of the side
    p_cutout: float = 0.25                         # 0 measured lower on dev (docs/annotators.md)
    cutout: tuple[float, float] = (0.1, 0.3)       # rectangle side, fraction of the side
    p_randconv: float = 0.0                        # random-convolution texture randomisation
    randconv_sizes: tuple[int, ...] = (1, 3, 5)    # kernel sides to draw from

    def __post_init__(self) -> None:
        check_range("augment.scale", self.scale, 0.5, 2.0)
        check_range("augment.lowres", self.lowres, 0.1, 1.0)
        check_range("augment.gamma", self.gamma, 0.2, 5.0)
        check_range("augment.noise", self.noise, 0.0, 0.5)
        check_range("augment.border", self.border, 0.0, 0.5)
        check_range("augment.cutout", self.cutout, 0.0, 0.9)
        check(all(k >= 1 and k % 2 == 1 for k in self.randconv_sizes), "augment.randconv_sizes must be odd and >= 1")
        for name in ("p_lowres", "p_noise", "p_border", "p_cutout", "p_randconv"):
            check(0.0 <= getattr(self, name) <= 1.0, f"augment.{name} must be in [0, 1]")
        check(0.0 <= self.shift <= 0.3 and 0.0 <= self.rotate <= 45.0 and 0.0 <= self.ramp <= 1.0,
              "augment.shift in [0, 0.3], rotate in [0, 45], ramp in [0, 1]")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with a one-cycle schedule over ``steps``; ``minutes`` (> 0) stops earlier at a
    wall-clock budget (the schedule still spans ``steps``). Loss weights of the auxiliary
    heads are relative to the AU loss (MSE on the 0-1 scale)."""

    steps: int = 6000
    minutes: float = 0.0
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    ema: float = 0.998
    w_visible: float = 0.05
    w_pose: float = 0.05
    threads: int = 1      # 1: under CPU contention OpenMP barriers make 2 threads ~4x slower here

    def __post_init__(self) -> None:
        check(self.steps >= 1 and self.batch_size >= 2, "optim.steps >= 1 and optim.batch_size >= 2")
        check(self.lr > 0 and self.weight_decay >= 0 and 0 <= self.ema < 1, "optim: lr > 0, weight_decay >= 0, ema in [0, 1)")
        check(self.minutes >= 0 and self.threads >= 1, "optim.minutes >= 0, optim.threads >= 1")


@dataclass(frozen=True)
class RunConfig:
    """Output folder (``model.pt``, ``config.yaml``, ``log.jsonl``) and cadence (steps)."""

    out_dir: str = "runs/synthetic-cnn"
    seed: int = 0
    log_every: int = 50
    eval_every: int = 1000
    # which evaluation's weights become model.pt: "last", or "best_dev" = the highest mean
    # dev-half AUC over the targeted emotions (early stopping on the tuning half; needs
    # data.dev_cache). The last weights are always kept as last.pt.
    keep: str = "last"

    def __post_init__(self) -> None:
        check(bool(self.out_dir), "run.out_dir is required")
        check(self.log_every >= 1 and self.eval_every >= 1, "run.log_every and run.eval_every must be >= 1")
        check(self.keep in ("last", "best_dev"), f"run.keep must be 'last' or 'best_dev', got {self.keep!r}")


@dataclass(frozen=True)
class LandmarkConfig:
    """The landmark branch (:mod:`annotate.cnn.geometry`), fitted after the CNN on the
    MediaPipe landmarks of the same renders' train split. ``n_components``: principal axes
    of the aligned shapes; ``alpha``: ridge penalty; ``max_occluded``: renders hidden by more
    than this face fraction are left out. ``exclude``: expression strategies (the renders'
    ``spec.expression.strategy``) left out of the fit; by default the emotion prototypes,
    whose AUs always come together, so a linear fit on them learns one AU from another's
    motion (a sad face's AU01 from its brow lowering) instead of from its own.
    ``fusion``: ``"dev"`` picks the CNN/landmark weight per key AU on the real-face dev
    half (needs ``data.dev_cache``), ``"even"`` uses 0.5.
    ``workers``: processes running MediaPipe on the renders (cached once per folder)."""

    enabled: bool = False
    n_components: int = 30
    alpha: float = 1.0
    max_occluded: float = 0.05
    exclude: tuple[str, ...] = ("prototype",)
    fusion: str = "dev"
    workers: int = 2

    def __post_init__(self) -> None:
        check(1 <= self.n_components <= 900, "landmarks.n_components must be in [1, 900]")
        check(self.alpha >= 0 and 0.0 <= self.max_occluded <= 1.0, "landmarks.alpha >= 0, max_occluded in [0, 1]")
        check(self.fusion in ("dev", "even"), f"landmarks.fusion must be 'dev' or 'even', got {self.fusion!r}")
        check(self.workers >= 1, "landmarks.workers must be >= 1")
        check(all(isinstance(x, str) and x for x in self.exclude), "landmarks.exclude: a list of strategy names")


@dataclass(frozen=True)
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    landmarks: LandmarkConfig = field(default_factory=LandmarkConfig)

    def __post_init__(self) -> None:
        check(self.data.load_size >= self.model.image_size,
              f"data.load_size ({self.data.load_size}) must be >= model.image_size ({self.model.image_size})")
