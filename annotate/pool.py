"""Worker processes for ``prepare`` that survive a crashing worker.

A worker that dies (a native crash in a decoder or model, the OOM killer) makes
``multiprocessing.Pool`` hang and ``ProcessPoolExecutor`` fail every pending task. Here each
worker writes the task it is on to ``<marker_dir>/<pid>`` and removes it when done; when the
pool breaks, the tasks named by leftover markers (at most one per worker) are re-run one at a
time in a fresh single-worker pool, which identifies the task that kills its worker: that
one is reported as ``worker-crashed``, the others are processed, and the batch goes on.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

Record = dict[str, Any]

_FN: Callable[[Any], Record] | None = None
_MARKERS: Path | None = None
_INIT_ERROR: str | None = None


def _init(marker_dir: str, init: Callable[..., Callable[[Any], Record]], args: tuple) -> None:
    global _FN, _MARKERS, _INIT_ERROR
    _MARKERS = Path(marker_dir)
    try:
        _FN = init(*args)
    except Exception as exc:  # reported by the first task, so the parent stops cleanly
        _INIT_ERROR = f"{type(exc).__name__}: {exc}"


def _call(task: Any) -> Record:
    if _FN is None:
        return {"source": task.rel, "fatal": _INIT_ERROR or "worker not initialised"}
    marker = _MARKERS / str(os.getpid())
    marker.write_text(task.rel)
    rec = _FN(task)
    marker.unlink(missing_ok=True)
    return rec


class WorkerStartError(RuntimeError):
    """Workers could not build their state (bad annotator options, missing weights, ...)."""


def run_tasks(tasks: Sequence[Any], workers: int, init: Callable[..., Callable[[Any], Record]],
              init_args: tuple, marker_dir: Path, crashed: Callable[[Any], Record]) -> Iterator[Record]:
    """Records of ``tasks`` (objects with a ``rel``) in completion order.

    ``init(*init_args)`` runs once per worker and returns the per-task function;
    ``crashed(task)`` builds the record of a task that kills its worker.
    """
    remaining = list(tasks)
    while remaining:
        finished: set[str] = set()
        try:
            for rec in _round(remaining, workers, init, init_args, marker_dir):
                finished.add(rec["source"])
                yield rec
            return
        except BrokenProcessPool:
            suspects = {p.read_text() for p in marker_dir.iterdir()} - finished
            remaining = [t for t in remaining if t.rel not in finished]
            if not suspects and not finished:
                raise WorkerStartError("worker processes die at start-up (native crash or out of memory)")
            for task in [t for t in remaining if t.rel in suspects]:
                yield _alone(task, init, init_args, marker_dir, crashed)
            remaining = [t for t in remaining if t.rel not in suspects]


def _round(tasks: list[Any], workers: int, init: Callable, init_args: tuple,
           marker_dir: Path) -> Iterator[Record]:
    marker_dir.mkdir(parents=True, exist_ok=True)
    for p in marker_dir.iterdir():
        p.unlink()
    ctx = mp.get_context("spawn")  # fresh processes: no inherited MediaPipe/torch threads
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init,
                             initargs=(str(marker_dir), init, init_args)) as pool:
        futures = [pool.submit(_call, t) for t in tasks]
        try:
            for fut in as_completed(futures):
                rec = fut.result()
                if "fatal" in rec:
                    raise WorkerStartError(f"worker failed to start: {rec['fatal']}")
                yield rec
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise


def _alone(task: Any, init: Callable, init_args: tuple, marker_dir: Path,
           crashed: Callable[[Any], Record]) -> Record:
    try:
        return next(_round([task], 1, init, init_args, marker_dir))
    except BrokenProcessPool:
        return crashed(task)
