"""Atomic file writes: a reader (or a resumed run) never sees a half-written file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def write_atomic(path: str | Path, write: Callable[[Any], None], mode: str = "wb",
                 fsync: bool = False) -> None:
    """Call ``write(fileobj)`` on a temp file in ``path``'s folder, then rename it.

    The rename is atomic, so a killed process leaves either the old file or the new one.
    ``fsync=True`` also survives power loss, at a cost per file (used for manifests).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    write_atomic(path, lambda fh: fh.write(data))


def write_text(path: str | Path, text: str) -> None:
    write_atomic(path, lambda fh: fh.write(text), mode="w")


def write_json(path: str | Path, obj: Any, indent: int | None = 2, fsync: bool = False) -> None:
    text = json.dumps(obj, indent=indent, sort_keys=False) + "\n"
    write_atomic(path, lambda fh: fh.write(text), mode="w", fsync=fsync)


def remove_stale_temps(folder: str | Path) -> int:
    """Delete ``.*.tmp`` leftovers of killed writers under ``folder``; returns the count."""
    n = 0
    for p in Path(folder).rglob(".*.tmp"):
        p.unlink(missing_ok=True)
        n += 1
    return n
