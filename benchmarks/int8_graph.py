"""Why the student's runtime graph stays float: onnxruntime's dynamic int8 quantization against it.

The bundle stores int8 weights with per-channel scales; its model.onnx holds them dequantised, and
the engine checks at load that the graph computes what the weights say within 1e-3
(plugins/student/plugin.py). This script quantizes the shipped graph with
`onnxruntime.quantization.quantize_dynamic` (int8 weights, activations quantized per call) and
prints, on real speech windows, the graph sizes and the largest output differences beside that bound.
Run: .venv/bin/python benchmarks/int8_graph.py
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from _common import corpus_speech, print_table  # first: it sets one thread for every library

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

import emolive
from emolive.engine.features import compute
from emolive.engine.features.normalise import as_one_stream
from emolive.plugins.student import DEFAULT_BUNDLE
from emolive.plugins.student.plugin import AGREEMENT_TOLERANCE

WINDOW, HOP = 150, 25  # 3 s windows every 0.5 s, in 20 ms frames


def main() -> None:
    model = emolive.load_model("student")
    source = DEFAULT_BUNDLE / "model.onnx"
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    with tempfile.TemporaryDirectory() as tmp:
        quantized = Path(tmp) / "int8.onnx"
        quantize_dynamic(str(source), str(quantized), weight_type=QuantType.QInt8)
        sessions = [ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
                    for p in (source, quantized)]
        sizes = [os.path.getsize(source), os.path.getsize(quantized)]
        features = as_one_stream(compute(corpus_speech("emodb", 60)), model.meta.stream_normalisation)
        windows = np.stack([features[i:i + WINDOW] for i in range(0, len(features) - WINDOW, HOP)]).astype(np.float32)
        feed = {"features": windows, "lengths": np.full(len(windows), WINDOW, np.int64)}
        outputs = [session.run(None, feed) for session in sessions]
    names = [o.name for o in sessions[0].get_outputs()]
    rows = [["graph size (bytes)", f"{sizes[0]}", f"{sizes[1]}", f"{sizes[1] / sizes[0]:.2f}"]]
    rows += [[f"largest |difference| in {name} ({len(windows)} windows)", "0", f"{np.abs(a - b).max():.4f}",
              f"{np.abs(a - b).max() / AGREEMENT_TOLERANCE:.0f}x the {AGREEMENT_TOLERANCE:g} bound"]
             for name, a, b in zip(names, *outputs)]
    print_table(["measure", "float graph (shipped)", "dynamic int8 graph", "int8 / float"], rows)


if __name__ == "__main__":
    main()
