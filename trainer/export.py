"""`trainer export --out`: a student's graph as a file that stands on its own.

Inside a bundle, model.onnx sits beside config.json, which says what its outputs mean and what
its input must be. A graph alone carries the same in its ONNX `metadata_props`, each a JSON string
(`onnx.load(path).metadata_props`), so a user of onnxruntime needs nothing else:

- `emolive.class_names`: the columns of `class_probs`, in order ([] for a model without a class head);
- `emolive.dimensions`, `emolive.label_scale`: the columns of `avd` and the scale they lie on;
- `emolive.frontend`: the front end that makes its input (engine.features.FrontEndConfig);
- `emolive.stream_normalisation`: the running per-stream normaliser the features go through
  before the graph (engine.features.normalise.StreamNormConfig), or null when the model has none.
"""
from __future__ import annotations

import json
from dataclasses import asdict

from emolive.engine.bundle import BundleMeta
from emolive.engine.schema import DIMENSIONS

METADATA_PREFIX = "emolive."


def graph_metadata(meta: BundleMeta) -> dict[str, str]:
    """What a standalone graph must say about its outputs and input, as JSON strings."""
    norm = meta.stream_normalisation
    values = {"class_names": list(meta.class_names), "dimensions": list(DIMENSIONS),
              "label_scale": list(meta.label_scale), "frontend": asdict(meta.frontend),
              "stream_normalisation": None if norm is None else asdict(norm)}
    return {METADATA_PREFIX + key: json.dumps(value) for key, value in values.items()}

