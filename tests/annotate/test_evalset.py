"""The annotators' real-face split: identity-disjoint halves, AUC scoring, dev-neutral export."""

from __future__ import annotations

import numpy as np

from annotate import evalset


def write_labels(root, rows):
    (root / "images").mkdir(parents=True)
    lines = ["image,identity,emotion,mode,width,height"]
    for image, ident, emo in rows:
        (root / "images" / image).write_bytes(b"x")
        lines.append(f"{image},{ident},{emo},RGB,10,10")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")


def test_split_is_by_identity_and_roughly_half():
    ids = [f"person{i}" for i in range(2000)]
    splits = [evalset.split_of(i) for i in ids]
    assert set(splits) == {"dev", "test"}
    assert 0.45 < splits.count("test") / len(ids) < 0.55
    assert all(evalset.split_of(i) == s for i, s in zip(ids, splits))


def test_dev_neutrals_one_per_dev_person_never_test(tmp_path):
    people = [f"p{i}" for i in range(40)]
    rows = []
    for p in people:
        rows += [(f"{p}_a.jpg", p, "neutral"), (f"{p}_b.jpg", p, "neutral"), (f"{p}_c.jpg", p, "happiness")]
    write_labels(tmp_path / "rf", rows)
    photos = evalset.dev_neutral_photos(tmp_path / "rf")
    dev = [p for p in people if evalset.split_of(p) == "dev"]
    assert 0 < len(dev) < len(people)
    assert sorted(p.name for p in photos) == sorted(f"{p}_a.jpg" for p in dev)
    assert evalset.main(["dev-neutrals", "--real-faces", str(tmp_path / "rf"), "--out", str(tmp_path / "o")]) == 0
    assert sorted(x.name for x in (tmp_path / "o").iterdir()) == sorted(p.name for p in photos)


def test_emotion_auc_uses_the_facs_key_aus():
    from aukit.aus import GANIMATION_AUS

    au = np.zeros((4, 17))
    au[0, GANIMATION_AUS.index("AU12")] = 3.0  # a smile scores above the neutral faces
    au[1, GANIMATION_AUS.index("AU04")] = 3.0  # a frown does not count towards happiness
    emo = np.array(["happiness", "happiness", "neutral", "neutral"])
    out = evalset.emotion_aucs(au, emo, ("happiness",))
    assert out["happiness"]["auc"] == 0.75 and out["happiness"]["n_pos"] == 2


def test_cache_command_crops_faces_and_lists_the_rest(tmp_path, feat_data):
    import shutil

    root = tmp_path / "rf"
    write_labels(root, [("a.jpg", "pa", "neutral"), ("b.jpg", "pb", "happiness"), ("c.jpg", "pc", "neutral")])
    shutil.copy(feat_data / "single_face.jpg", root / "images" / "a.jpg")
    shutil.copy(feat_data / "free-mountain-vector-01.jpg", root / "images" / "b.jpg")   # no face
    # c.jpg stays the 1-byte corrupt file write_labels made
    out = tmp_path / "cache" / "faces.npz"
    assert evalset.main(["cache", "--real-faces", str(root), "--out", str(out)]) == 0
    fs = evalset.load_cache(out)
    assert list(fs.names) == ["a.jpg"] and sorted(fs.missed) == ["b.jpg", "c.jpg"]
    assert fs.crops.shape == (1, 128, 128, 3) and fs.landmarks.shape == (1, 478, 3)
    assert list(fs.split) == [evalset.split_of("pa")]
    inside = (fs.landmarks[0, :, :2] > 0) & (fs.landmarks[0, :, :2] < 128)
    assert inside.mean() > 0.95   # the landmarks were moved into the crop's pixels
