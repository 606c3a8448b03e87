"""The ``synthetic-cnn`` AU annotator: a CNN trained only on rendered, exactly labelled faces.

* :mod:`annotate.cnn.model`: the network; :mod:`annotate.cnn.checkpoint`: its files.
* :mod:`annotate.cnn.data`, :mod:`annotate.cnn.augment`: rendered datasets -> batches.
* :mod:`annotate.cnn.train`: ``python -m annotate.cnn.train --config configs/annotate/cnn-cpu.yaml``.
* :mod:`annotate.cnn.annotator`: inference behind the annotator registry (torch imported lazily).
"""
