"""Local executor: in this process for one worker, else a pool of spawned processes."""

from __future__ import annotations

import multiprocessing as mp
from typing import Any, Iterator

from synth import pipeline


def run(job, units: list, workers: int) -> Iterator[list[dict[str, Any]]]:
    if not units:
        return
    if workers <= 1 or len(units) == 1:
        pipeline._init_worker(job)
        try:
            for unit in units:
                yield pipeline.run_unit(unit)
        finally:
            pipeline.close_worker()
        return
    # spawn, not fork: every worker needs its own fresh OpenGL/EGL (or Blender) state
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=pipeline._init_worker, initargs=(job,)) as pool:
        yield from pool.imap_unordered(pipeline.run_unit, units, chunksize=1)
