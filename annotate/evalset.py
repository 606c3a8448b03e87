"""The real-face evaluation set of the annotators: a fixed identity split and a crop cache.

Source: ``real_faces/`` (``labels.csv``: image, identity, emotion, ...; see the shared data
README). The set is split by **identity** into two halves, fixed forever by a hash:

* ``test``: ``sha1("annotator-auc:" + identity)`` read as a fraction of 2^160 is < 0.5.
  Never used for training or tuning: only ``bench/annotator_auc.py`` reports on it.
* ``dev``: the other half. Free for tuning decisions (which recipe, which calibration).

No annotator is trained on real images (``synthetic-cnn`` trains on renders only): ``dev``
is used only for choices (the training recipe, the best-dev checkpoint, and the landmark
branch's per-AU blend weights, a handful of values on a fixed grid), never as training
examples.

:func:`build_cache` detects each photo's largest face (``aukit.faces``), cuts it with the
shared crop rule (``aukit.crop``) at ``size`` px -- exactly what ``ausynth prepare`` feeds
an annotator -- and stores crops and landmarks in one ``.npz``, so each annotator sees the
same faces and detection runs once.
"""

from __future__ import annotations

import csv
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from annotate.base import FaceSample
from aukit.crop import crop_box, crop_image

SPLIT_SALT = "annotator-auc:"


def split_of(identity: str) -> str:
    """``"test"`` or ``"dev"`` for a person (half of the identities each, by hash)."""
    digest = hashlib.sha1((SPLIT_SALT + identity).encode("utf-8")).digest()
    return "test" if int.from_bytes(digest, "big") < (1 << 159) else "dev"


@dataclass(frozen=True)
class FaceSet:
    """Cached faces. ``crops`` uint8 (N, S, S, 3) RGB; ``landmarks`` float32 (N, 478, 3) in
    crop pixels (z scaled alike); ``image_landmarks`` float32 (N, 478, 3) photo pixels;
    ``names``/``identity``/``emotion``/``split``: str (N,). Photos without a face are left
    out (their names are in ``missed``)."""

    names: np.ndarray
    identity: np.ndarray
    emotion: np.ndarray
    split: np.ndarray
    crops: np.ndarray
    landmarks: np.ndarray
    image_landmarks: np.ndarray
    missed: np.ndarray

    def sample(self, i: int) -> FaceSample:
        """Face ``i`` as an annotator input."""
        return FaceSample(self.crops[i], self.landmarks[i], self.image_landmarks[i], str(self.names[i]))

    def subset(self, mask: np.ndarray) -> "FaceSet":
        """The faces where ``mask`` (bool (N,)) is true."""
        return FaceSet(self.names[mask], self.identity[mask], self.emotion[mask], self.split[mask],
                       self.crops[mask], self.landmarks[mask], self.image_landmarks[mask], self.missed)


def read_labels(root: Path) -> list[dict[str, str]]:
    """Rows of ``root/labels.csv`` (image, identity, emotion, ...)."""
    with open(root / "labels.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def build_cache(root: Path, out: Path, size: int = 128, limit: int | None = None,
                log_every: int = 500) -> Path:
    """Detect, crop and store every photo of ``root`` (``real_faces``) into ``out`` (.npz)."""
    from aukit.faces import FaceAnalyzer
    from aukit.imageio import ImageError, load_image

    rows = read_labels(root)[:limit]
    keep: dict[str, list] = {k: [] for k in ("names", "identity", "emotion", "split", "crops",
                                              "landmarks", "image_landmarks")}
    missed, t0 = [], time.time()
    with FaceAnalyzer() as analyzer:
        for n, row in enumerate(rows):
            try:
                image = load_image(root / "images" / row["image"])
            except ImageError:
                missed.append(row["image"])
                continue
            face = analyzer.largest_face(image, allow_tiny=True)
            if face is None:
                missed.append(row["image"])
                continue
            box = crop_box(face.landmarks[:, :2])
            lm = box.landmarks_to_crop(face.landmarks, size)
            for key, val in (("names", row["image"]), ("identity", row["identity"]),
                             ("emotion", row["emotion"]), ("split", split_of(row["identity"])),
                             ("crops", crop_image(image, box, size)), ("landmarks", lm),
                             ("image_landmarks", face.landmarks.astype(np.float32))):
                keep[key].append(val)
            if log_every and (n + 1) % log_every == 0:
                print(f"  cache: {n + 1}/{len(rows)} photos, {len(missed)} without a face, "
                      f"{time.time() - t0:.0f} s", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, **{k: np.asarray(v) for k, v in keep.items()}, missed=np.asarray(missed, dtype=str))
    tmp.replace(out)
    return out


def load_cache(path: Path) -> FaceSet:
    """A cache written by :func:`build_cache`."""
    with np.load(path, allow_pickle=False) as z:
        return FaceSet(**{k: z[k] for k in ("names", "identity", "emotion", "split", "crops",
                                             "landmarks", "image_landmarks", "missed")})


#: Emotions reported by the AUC check (fear/contempt have too few faces to rank).
AUC_EMOTIONS: tuple[str, ...] = ("happiness", "surprise", "sadness", "anger", "disgust")


def facs_score(au17: np.ndarray, emotion: str) -> np.ndarray:
    """(N,) sum of the ``EMOTION_KEY_AUS[emotion]`` intensities of (N, 17) GANimation AUs."""
    from aukit.aus import EMOTION_KEY_AUS, GANIMATION_AUS

    cols = [GANIMATION_AUS.index(a) for a in EMOTION_KEY_AUS[emotion]]
    return np.asarray(au17, dtype=np.float64)[:, cols].sum(axis=1)


def emotion_aucs(au17: np.ndarray, emotion: np.ndarray,
                 emotions: tuple[str, ...] = AUC_EMOTIONS) -> dict[str, dict[str, float]]:
    """Per emotion: ROC AUC of :func:`facs_score` for that emotion vs ``neutral`` faces,
    with the counts. ``au17``: (N, 17); ``emotion``: str (N,)."""
    from sklearn.metrics import roc_auc_score

    out = {}
    for emo in emotions:
        mask = (emotion == emo) | (emotion == "neutral")
        pos = int((emotion == emo).sum())
        neg = int(mask.sum()) - pos
        auc = float(roc_auc_score(emotion[mask] == emo, facs_score(au17[mask], emo))) if pos and neg else float("nan")
        out[emo] = {"auc": auc, "n_pos": pos, "n_neutral": neg}
    return out


def dev_neutral_photos(root: Path) -> list[Path]:
    """One neutral photo per ``dev`` identity (the first listed), sorted: the sources of the
    photo identities the ``synthetic-cnn`` renders use. Never touches the ``test`` half."""
    seen: dict[str, Path] = {}
    for row in read_labels(root):
        if row["emotion"] == "neutral" and split_of(row["identity"]) == "dev":
            seen.setdefault(row["identity"], root / "images" / row["image"])
    return sorted(seen.values())


def main(argv: list[str] | None = None) -> int:
    """``python -m annotate.evalset dev-neutrals --real-faces DIR --out DIR`` links the dev
    half's neutral photos (one per person) into ``--out``, ready for ``ausynth identities build``;
    ``python -m annotate.evalset cache --real-faces DIR --out FILE.npz`` detects and crops every
    photo once (the face cache the emotion-AUC bench and the CNN's dev evaluation read)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m annotate.evalset", description=main.__doc__)
    p.add_argument("command", choices=["dev-neutrals", "cache"])
    p.add_argument("--real-faces", type=Path, required=True, help="real_faces folder (labels.csv, images/)")
    p.add_argument("--out", type=Path, required=True,
                   help="dev-neutrals: folder to fill with symlinks; cache: the .npz to write")
    args = p.parse_args(argv)
    if not (args.real_faces / "labels.csv").is_file():
        p.error(f"{args.real_faces}/labels.csv not found")
    if args.command == "cache":
        print(f"building the face cache {args.out} (detection + crops of every photo, a few minutes)")
        with np.load(build_cache(args.real_faces, args.out)) as z:   # lazy: reads two small arrays, not the crops
            print(f"{len(z['names'])} faces cached in {args.out}; {len(z['missed'])} photos without a face")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    photos = dev_neutral_photos(args.real_faces)
    for src in photos:
        dst = args.out / src.name
        if not dst.exists():
            dst.symlink_to(src.resolve())
    print(f"{len(photos)} dev-split neutral photos linked into {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
