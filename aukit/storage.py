"""Where datasets are written: a local folder, or any fsspec URL (object stores for users).

Every write is atomic: locally through a temp file and a rename; on fsspec filesystems
through a single ``pipe`` of the whole object (object stores replace objects atomically).
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from aukit import atomic


class Storage:
    """Minimal file API over a dataset root; paths are relative, '/'-separated."""

    def write_bytes(self, rel: str, data: bytes) -> None:
        raise NotImplementedError

    def read_bytes(self, rel: str) -> bytes:
        raise NotImplementedError

    def exists(self, rel: str) -> bool:
        raise NotImplementedError

    def list(self, rel_dir: str, suffix: str = "") -> list[str]:
        """Names (not paths) of the files directly in ``rel_dir`` ending with ``suffix``, sorted."""
        raise NotImplementedError

    def local_path(self) -> Path | None:
        """The local folder, when there is one (readers that need real paths use it)."""
        return None


class LocalStorage(Storage):
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def write_bytes(self, rel: str, data: bytes) -> None:
        atomic.write_bytes(self.root / rel, data)

    def read_bytes(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def exists(self, rel: str) -> bool:
        return (self.root / rel).is_file()

    def list(self, rel_dir: str, suffix: str = "") -> list[str]:
        d = self.root / rel_dir
        if not d.is_dir():
            return []
        return sorted(p.name for p in d.iterdir() if p.is_file() and p.name.endswith(suffix)
                      and not p.name.startswith("."))

    def local_path(self) -> Path:
        return self.root


class FsspecStorage(Storage):
    """Any fsspec filesystem (``s3://``, ``gs://``, ``memory://`` ...); needs ``fsspec``
    plus the filesystem's own package (s3fs, gcsfs, ...)."""

    def __init__(self, url: str):
        import fsspec

        self.fs, self.root = fsspec.core.url_to_fs(url)

    def _p(self, rel: str) -> str:
        return posixpath.join(self.root, rel)

    def write_bytes(self, rel: str, data: bytes) -> None:
        self.fs.pipe(self._p(rel), data)

    def read_bytes(self, rel: str) -> bytes:
        return self.fs.cat(self._p(rel))

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self._p(rel))

    def list(self, rel_dir: str, suffix: str = "") -> list[str]:
        d = self._p(rel_dir)
        if not self.fs.exists(d):
            return []
        names = [posixpath.basename(p.rstrip("/")) for p in self.fs.ls(d, detail=False)]
        return sorted(n for n in names if n.endswith(suffix) and not n.startswith("."))


def open_storage(url: str | Path) -> Storage:
    """``LocalStorage`` for plain paths and ``file://`` URLs, ``FsspecStorage`` otherwise."""
    text = str(url)
    if "://" not in text:
        return LocalStorage(text)
    if text.startswith("file://"):
        return LocalStorage(text[len("file://"):])
    return FsspecStorage(text)
