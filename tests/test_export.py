"""`trainer export --out`: a graph on its own says what its outputs mean and what its input must be."""
from __future__ import annotations

import json
from dataclasses import asdict

import onnx

from emolive.engine.schema import DIMENSIONS
from emolive.plugins.student import DEFAULT_BUNDLE, load_bundle
from emolive.trainer.cli import main as trainer_main


def test_a_standalone_graph_carries_its_classes_scale_front_end_and_normaliser(tmp_path):
    _, meta = load_bundle(DEFAULT_BUNDLE)
    out = tmp_path / "student.onnx"
    assert trainer_main(["export", "--out", str(out)]) == 0
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    read = {key.removeprefix("emolive."): json.loads(value) for key, value in props.items()
            if key.startswith("emolive.")}
    assert read == {"class_names": list(meta.class_names), "dimensions": list(DIMENSIONS),
                    "label_scale": list(meta.label_scale),
                    "frontend": json.loads(json.dumps(asdict(meta.frontend))),
                    "stream_normalisation": json.loads(json.dumps(asdict(meta.stream_normalisation)))}
    assert read["class_names"] and read["stream_normalisation"]["columns"] == 41  # the shipped student has both
