"""Content hashes of files: sha1 read in 1 MiB chunks, so any file size in constant memory.

The one implementation behind every file key in the project (prepare's source hashes,
photo-identity input keys, judge model digests, checkpoint hashes in eval reports).
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha1(path: str | Path) -> str:
    """Hex sha1 (40 digits) of the file's bytes; raises ``OSError`` if it cannot be read."""
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
