"""annotate.sources: listing, sample ids, identities and deterministic identity-disjoint splits."""

from __future__ import annotations

import numpy as np
import pytest

from annotate.sources import LabelsTable, Photo, face_id, identity_of, list_photos, photo_id, split_of
from aukit.dataset import check_id


def test_photo_ids_are_safe_unique_and_stable():
    rels = ["a b.jpg", "a_b.jpg", "a_b.png", "x/../y.jpg", "../z.jpg", "dir/sub/img.JPG", ".jpg",
            "ünïcødé.jpg", "a" * 300 + ".jpg", "no_ext"]
    ids = [photo_id(r) for r in rels]
    assert len(set(ids)) == len(ids)
    for i in ids:
        assert check_id(i) == i and ".." not in i and "/" not in i
    assert photo_id("dir/sub/img.JPG") == photo_id("dir/sub/img.JPG")
    assert photo_id("dir/sub/img.JPG").startswith("dir__sub__img-")
    assert face_id("a.jpg", 3, all_faces=True) == photo_id("a.jpg") + "_f3"
    assert face_id("a.jpg", 0, all_faces=False) == photo_id("a.jpg")


def test_split_is_deterministic_and_near_fraction():
    keys = [f"person_{i}" for i in range(4000)]
    splits = [split_of(k, 0, 0.2) for k in keys]
    assert splits == [split_of(k, 0, 0.2) for k in keys]
    share = np.mean([s == "test" for s in splits])
    assert abs(share - 0.2) < 0.03
    assert splits != [split_of(k, 1, 0.2) for k in keys]   # the seed matters
    assert {split_of(k, 0, 0.0) for k in keys[:50]} == {"train"}
    assert {split_of(k, 0, 1.0) for k in keys[:50]} == {"test"}


def test_list_photos_skips_hidden_and_excluded(tmp_path):
    for rel in ["b.jpg", "a/c.png", ".hidden.jpg", ".git/x.jpg", "out/imgs/d.jpg", "notes.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    photos = list_photos(tmp_path, exclude=tmp_path / "out")
    assert [p.rel for p in photos] == ["a/c.png", "b.jpg", "notes.txt"]
    assert [p.is_image_name for p in photos] == [True, True, False]
    with pytest.raises(FileNotFoundError):
        list_photos(tmp_path / "missing")


def test_labels_table_and_identity_sources(tmp_path):
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("image,identity,emotion\nimgs/p1.jpg,alice,happiness\nq.jpg,bob,neutral\n"
                        "dup.jpg,carol,neutral\nother/dup.jpg,dave,neutral\n")
    table = LabelsTable(csv_path)
    assert identity_of(Photo("imgs/p1.jpg", tmp_path), table, False) == ("alice", {"emotion": "happiness"})
    assert identity_of(Photo("deep/q.jpg", tmp_path), table, False)[0] == "bob"     # by file name
    assert identity_of(Photo("x/dup.jpg", tmp_path), table, False)[0] is None       # ambiguous name
    assert identity_of(Photo("unknown.jpg", tmp_path), table, False)[0] is None
    assert identity_of(Photo("people/eve/1.jpg", tmp_path), None, True)[0] == "people/eve"
    assert identity_of(Photo("top.jpg", tmp_path), None, True)[0] is None
    (tmp_path / "bad.csv").write_text("file,person\n")
    with pytest.raises(ValueError, match="identity"):
        LabelsTable(tmp_path / "bad.csv")
