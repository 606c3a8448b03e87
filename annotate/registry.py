"""Annotator registry: name -> factory. Importing it is cheap (factories import lazily).

To add an annotator, write a module with a ``create(**options) -> Annotator`` factory and
add one line to :data:`ANNOTATORS` (or call :func:`register` at run time, e.g. in tests).
Factories must be module-level functions: ``prepare`` pickles them to its workers.
"""

from __future__ import annotations

from typing import Any

from annotate import geometric, openface, pyfeat
from annotate.base import Annotator, AnnotatorFactory
from annotate.cnn import annotator as synthetic_cnn

ANNOTATORS: dict[str, AnnotatorFactory] = {
    "geometric": geometric.create,
    "synthetic-cnn": synthetic_cnn.create,
    "openface": openface.create,
    "pyfeat": pyfeat.create,
}


def register(name: str, factory: AnnotatorFactory, replace: bool = False) -> None:
    """Add ``factory`` under ``name`` (an error if taken, unless ``replace``)."""
    if not replace and name in ANNOTATORS and ANNOTATORS[name] is not factory:
        raise ValueError(f"annotator {name!r} is already registered")
    ANNOTATORS[name] = factory


def get_factory(name: str) -> AnnotatorFactory:
    if name not in ANNOTATORS:
        raise ValueError(f"unknown annotator {name!r}; available: {', '.join(sorted(ANNOTATORS))}")
    return ANNOTATORS[name]


def create(name: str, **options: Any) -> Annotator:
    """Build the annotator registered as ``name`` with ``options``."""
    return get_factory(name)(**options)
