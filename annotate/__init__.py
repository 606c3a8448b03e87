"""Real photos -> GANimation-format datasets: AU annotators and ``ausynth prepare``.

* :mod:`annotate.base`: the :class:`~annotate.base.Annotator` protocol and its registry.
* :mod:`annotate.openface`: AUs imported from OpenFace CSVs.
* :mod:`annotate.pyfeat`: py-feat's AU detector (needs its weights in the HF cache).
* :mod:`annotate.prepare`: the ``ausynth prepare`` command.
"""
