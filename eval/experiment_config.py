"""Settings of the end-to-end study (``python -m eval.experiment``), frozen via
:mod:`aukit.config` (unknown keys are errors). Preset: ``configs/experiment/cpu-study.yaml``."""

from __future__ import annotations

from dataclasses import dataclass

from aukit.config import check


@dataclass(frozen=True)
class SynthSection:
    """The synthetic training set (``ausynth render``): ``n`` images at the study's size,
    the renderer's default scene distribution plus ``set`` overrides."""

    n: int = 1500
    workers: int = 2
    set: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check(self.n >= 16, "synth.n must be >= 16")


@dataclass(frozen=True)
class SynthTestSection:
    """The synthetic test set: ``n`` neutral faces of unseen procedural identities (another
    seed), moderate poses, no occluders, with per-AU companion renders for attention IoU
    (:mod:`eval.regions`)."""

    n: int = 12
    seed_offset: int = 1000
    set: tuple[str, ...] = ("pose.yaw=[-25,25]", "pose.pitch=[-15,15]", "occluders.probability=0")

    def __post_init__(self) -> None:
        check(self.n >= 2, "synth_test.n must be >= 2")


@dataclass(frozen=True)
class RealSection:
    """The real set: ``n_photos`` photos of whole identities drawn (seeded) from
    ``labels_csv``, prepared (``ausynth prepare``) with ``annotator`` as pseudo-labeller and
    an identity-disjoint ``test_fraction`` split. Paths are relative to the repository."""

    images: str = "../shared/data/real_faces/images"
    labels_csv: str = "../shared/data/real_faces/labels.csv"
    n_photos: int = 2000
    test_fraction: float = 0.2
    annotator: str = "geometric"
    size: int = 128
    workers: int = 2

    def __post_init__(self) -> None:
        check(self.n_photos >= 20, "real.n_photos must be >= 20")
        check(0 < self.test_fraction < 1, "real.test_fraction must be in (0, 1)")


@dataclass(frozen=True)
class ModelSpec:
    """One trained model: ``real_share`` of each batch drawn from the real set (0: synthetic
    only, 1: real only, else both sources with ``--mix``)."""

    name: str
    real_share: float

    def __post_init__(self) -> None:
        check(0.0 <= self.real_share <= 1.0, f"model {self.name}: real_share must be in [0, 1]")
        check(self.name.replace("_", "").replace("-", "").isalnum(), f"model name {self.name!r}: alphanumeric")


@dataclass(frozen=True)
class TrainSection:
    """``ausynth train`` of every model with ``config`` (a preset) for ``steps`` critic
    steps (same compute for every model), ``parallel`` runs at a time, one thread each."""

    config: str = "configs/train/cpu-small.yaml"
    steps: int = 1000
    parallel: int = 2
    set: tuple[str, ...] = ()
    models: tuple[ModelSpec, ...] = (ModelSpec("synth", 0.0), ModelSpec("mix25", 0.25),
                                     ModelSpec("mix50", 0.5), ModelSpec("mix75", 0.75),
                                     ModelSpec("real", 1.0))

    def __post_init__(self) -> None:
        check(self.steps >= 2, "train.steps must be >= 2")
        check(self.parallel >= 1, "train.parallel must be >= 1")
        check(len({m.name for m in self.models}) == len(self.models) >= 1, "train.models: unique names")


@dataclass(frozen=True)
class EvalSection:
    """``ausynth eval`` with ``config``; models split over ``parallel`` processes."""

    config: str = "configs/eval/cpu-study.yaml"
    parallel: int = 2
    set: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExperimentConfig:
    seed: int = 0
    image_size: int = 64
    synth: SynthSection = SynthSection()
    synth_test: SynthTestSection = SynthTestSection()
    real: RealSection = RealSection()
    train: TrainSection = TrainSection()
    eval: EvalSection = EvalSection()
    title: str = "ausynth CPU study: synthetic vs real vs mixed GANimation"

    def __post_init__(self) -> None:
        check(self.image_size in (32, 64, 128, 256), "image_size must be 32, 64, 128 or 256")
