"""Settings of ``ausynth eval`` (frozen dataclasses via :mod:`aukit.config`; unknown keys
are errors). YAML presets live in ``configs/eval/``; ``--set key.sub=value`` overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aukit.aus import GANIMATION_AUS
from aukit.config import check
from eval.targets import DEFAULT_EMOTIONS


@dataclass(frozen=True)
class TargetsConfig:
    """Which target AU sets every test face is edited to (see :mod:`eval.targets`)."""

    aus: tuple[str, ...] = GANIMATION_AUS
    intensities: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 5.0)
    emotions: tuple[str, ...] = DEFAULT_EMOTIONS

    def __post_init__(self) -> None:
        check(all(a in GANIMATION_AUS for a in self.aus), f"targets.aus must be GANimation AUs, got {self.aus}")
        check(all(0 < v <= 5 for v in self.intensities), "targets.intensities must be in (0, 5]")
        check(bool(self.aus and self.intensities) or bool(self.emotions), "targets: nothing to evaluate")


@dataclass(frozen=True)
class SelectConfig:
    """Which test faces are edited: ``n_faces`` drawn (seeded) from the ``split`` (a test set
    can override it: ``NAME:DIR#all``), neutral
    ones only when ``neutral_only`` (real: source label ``emotion == neutral``; synthetic:
    every AU exactly 0 apart from blinks)."""

    n_faces: int = 24
    split: Literal["test", "train", "all"] = "test"
    neutral_only: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        check(self.n_faces >= 2, f"select.n_faces must be >= 2, got {self.n_faces}")


@dataclass(frozen=True)
class JudgesConfig:
    """``au_annotator``: registry name or ``auto`` (best available, :mod:`eval.judges.au`);
    ``au_crop_px``: crop size the AU annotator sees; ``identity_on``: which edits get the
    (slow, ~0.1 s/face) identity judge: ``emotions`` (prototype edits), ``all``, ``none``."""

    au_annotator: str = "auto"
    au_crop_px: int = 128
    au: bool = True
    identity_on: Literal["emotions", "all", "none"] = "emotions"

    def __post_init__(self) -> None:
        check(32 <= self.au_crop_px <= 512, "judges.au_crop_px must be in [32, 512]")


@dataclass(frozen=True)
class RealismConfig:
    """Reference images of FD/KID: the named test set's ``reference_split`` (all its images,
    every expression, minus the faces being edited), at most ``reference_max`` of them.
    ``reference``: a test-set name, or ``auto`` = the first real test set."""

    reference: str = "auto"
    reference_split: Literal["test", "train"] = "test"
    reference_max: int = 1000
    max_boot: int = 200

    def __post_init__(self) -> None:
        check(self.reference_max >= 10, "realism.reference_max must be >= 10")
        check(self.max_boot >= 0, "realism.max_boot must be >= 0")


@dataclass(frozen=True)
class StatsConfig:
    """Cluster bootstrap over test faces (:mod:`aukit.stats`)."""

    n_boot: int = 1000
    ci: float = 0.95
    seed: int = 0
    attention_threshold: float = 0.5
    saturation: float = 0.05

    def __post_init__(self) -> None:
        check(self.n_boot >= 10, "stats.n_boot must be >= 10")
        check(0.5 <= self.ci < 1.0, "stats.ci must be in [0.5, 1)")
        check(0 < self.attention_threshold < 1, "stats.attention_threshold must be in (0, 1)")
        check(0 < self.saturation < 0.5, "stats.saturation must be in (0, 0.5)")


@dataclass(frozen=True)
class EvalConfig:
    """Everything that shapes the numbers of an evaluation (stored with the results)."""

    targets: TargetsConfig = TargetsConfig()
    select: SelectConfig = SelectConfig()
    judges: JudgesConfig = JudgesConfig()
    realism: RealismConfig = RealismConfig()
    stats: StatsConfig = StatsConfig()
    baseline: bool = True          # add a "no-edit" row: output = input, attention = 1
    grid_faces: int = 2            # faces whose edited images are kept for the report
    batch_size: int = 32
    device: str = "cpu"
    cpu_threads: int = 1
    extra: dict[str, str] = field(default_factory=dict)  # free-form notes copied to the results

    def __post_init__(self) -> None:
        check(self.batch_size >= 1, "batch_size must be >= 1")
        check(self.grid_faces >= 0, "grid_faces must be >= 0")
        check(self.cpu_threads >= 1, "cpu_threads must be >= 1")
