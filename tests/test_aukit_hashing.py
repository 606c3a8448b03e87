"""aukit.hashing: the shared file hash behind prepare, photo identities, judges and eval."""

from __future__ import annotations

import hashlib

import pytest

from aukit.hashing import file_sha1


def test_file_sha1_matches_hashlib_across_chunk_boundaries(tmp_path):
    for size in (0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 7, 3 * (1 << 20) + 5):
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        p = tmp_path / f"f{size}"
        p.write_bytes(data)
        assert file_sha1(p) == hashlib.sha1(data).hexdigest()


def test_file_sha1_missing_file_raises(tmp_path):
    with pytest.raises(OSError):
        file_sha1(tmp_path / "absent")
