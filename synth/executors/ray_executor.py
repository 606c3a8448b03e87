"""Ray executor: one render actor per worker (renderer built once, reused), units spread
over the actors, failed units retried, progress aggregated in the driver.

Without ``ray_address`` a local Ray instance is started with ``workers`` CPUs; with one
(``auto`` or ``ray://host:10001``) the job joins an existing cluster, and the output
location must then be reachable from every node (a shared filesystem or an fsspec URL
such as ``s3://bucket/dataset``).
"""

from __future__ import annotations

import os
from typing import Any, Iterator

from synth import pipeline

MAX_RETRIES = 3


class RenderActor:
    """Holds one rig + renderer for the actor's lifetime."""

    def __init__(self, job):
        # EGL must be chosen before pyrender is imported in the actor process
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
        pipeline._init_worker(job)

    def run(self, unit) -> list[dict[str, Any]]:
        return pipeline.run_unit(unit)


def _ray():
    try:
        import ray
    except ModuleNotFoundError as exc:
        raise RuntimeError("--executor ray needs Ray: pip install 'ray==2.60.0'") from exc
    return ray


def run(job, units: list, workers: int, address: str | None = None) -> Iterator[list[dict[str, Any]]]:
    if not units:
        return
    ray = _ray()
    started = False
    if not ray.is_initialized():
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "runtime_env": {"env_vars": {"PYOPENGL_PLATFORM": "egl"}}}
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=max(1, workers), **kwargs)
        started = True
    try:
        yield from _drive(ray, job, units, workers)
    finally:
        if started:
            ray.shutdown()


def _drive(ray, job, units, workers) -> Iterator[list[dict[str, Any]]]:
    """Keep every actor busy with one unit; resubmit a unit whose actor died."""
    actor_cls = ray.remote(num_cpus=1, max_restarts=MAX_RETRIES)(RenderActor)
    actors = [actor_cls.remote(job) for _ in range(max(1, workers))]
    queue = list(units)
    tries = {id(u): 0 for u in queue}
    running: dict[Any, tuple[Any, tuple]] = {}

    def submit(actor):
        unit = queue.pop(0)
        running[actor.run.remote(unit)] = (actor, unit)

    for actor in actors:
        if queue:
            submit(actor)
    while running:
        done, _ = ray.wait(list(running), num_returns=1)
        ref = done[0]
        actor, unit = running.pop(ref)
        try:
            yield ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError, ray.exceptions.WorkerCrashedError):
            tries[id(unit)] += 1
            if tries[id(unit)] > MAX_RETRIES:
                yield [{"index": i, "ok": False, "error": "unit failed after retries"} for i in _indices(job, unit)]
            else:
                queue.insert(0, unit)  # the actor restarts (max_restarts); try again
        if queue:
            submit(actor)


def _indices(job, unit) -> list[int]:
    if unit[0] == "shard":
        k, size = unit[1][0], job.cfg.output.shard_size
        return list(range(k * size, min(job.n, (k + 1) * size)))
    return list(unit[1])
