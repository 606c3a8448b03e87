"""Executors run render work units: ``local`` (this machine's processes) or ``ray``.

Both call the same worker functions of :mod:`synth.pipeline` (one renderer per worker
process or actor, built once), so output is identical whichever runs it.
"""

from __future__ import annotations

from typing import Any, Iterator

EXECUTORS = ("local", "ray")


def run_units(job, units: list, workers: int, executor: str = "local",
              ray_address: str | None = None) -> Iterator[list[dict[str, Any]]]:
    """Yield each finished unit's sample statuses, in completion order."""
    if executor == "local":
        from synth.executors.local import run
        yield from run(job, units, workers)
    elif executor == "ray":
        from synth.executors.ray_executor import run
        yield from run(job, units, workers, ray_address)
    else:
        raise ValueError(f"unknown executor {executor!r}; choose one of {EXECUTORS}")
