"""The student's runtime graph with int8 weights: the shipped form (int8 values and scales behind
DequantizeLinear, plugins/student/graph.py) against the same graph with float weights (what
shipped before) and onnxruntime's dynamic int8 quantization of it (int8 weights and activations).

Printed from one run, on real speech windows (3 s every 0.5 s, one thread, the engine's session
options): file size, time per
window (one window per call, as live), and the largest output difference from the float graph
beside the 1e-3 agreement the engine checks at load (plugins/student/plugin.py).
Run: .venv/bin/python benchmarks/int8_graph.py
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import best_time, corpus_speech, print_table  # first: it sets one thread for every library

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

import emolive
from emolive.engine.features import compute
from emolive.engine.features.normalise import as_one_stream
from emolive.plugins.student import DEFAULT_BUNDLE
from emolive.plugins.student.plugin import AGREEMENT_TOLERANCE, session_options

WINDOW, HOP = 150, 25  # 3 s windows every 0.5 s, in 20 ms frames


def float_graph(graph: onnx.ModelProto) -> onnx.ModelProto:
    """The shipped graph with each DequantizeLinear of an initializer folded into a float initializer."""
    folded = onnx.ModelProto()
    folded.CopyFrom(graph)
    inits = {i.name: i for i in folded.graph.initializer}
    for node in [n for n in folded.graph.node if n.op_type == "DequantizeLinear"]:
        q, scale = (numpy_helper.to_array(inits[name]) for name in node.input[:2])
        axis = next(a.i for a in node.attribute if a.name == "axis")
        shape = [1] * q.ndim
        shape[axis] = -1
        weights = (q.astype(np.float32) * scale.reshape(shape)).astype(np.float32)
        for name in node.input[:2]:
            folded.graph.initializer.remove(inits[name])
        folded.graph.initializer.append(numpy_helper.from_array(weights, node.output[0]))
        folded.graph.node.remove(node)
    return folded


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help, nothing more
    model = emolive.load_model("student")
    options = session_options(1)  # the engine's, one thread
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"float": Path(tmp) / "float.onnx", "int8 weights": DEFAULT_BUNDLE / "model.onnx",
                 "dynamic int8": Path(tmp) / "dynamic.onnx"}
        onnx.save(float_graph(onnx.load(str(paths["int8 weights"]))), str(paths["float"]))
        quantize_dynamic(str(paths["float"]), str(paths["dynamic int8"]), weight_type=QuantType.QInt8)
        sessions = {k: ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"]) for k, p in paths.items()}
        sizes = {k: p.stat().st_size for k, p in paths.items()}
        features = as_one_stream(compute(corpus_speech("emodb", 60)), model.meta.stream_normalisation)
        windows = np.stack([features[i:i + WINDOW] for i in range(0, len(features) - WINDOW, HOP)]).astype(np.float32)
        feed = {"features": windows, "lengths": np.full(len(windows), WINDOW, np.int64)}
        one = {"features": windows[:1], "lengths": np.array([WINDOW], np.int64)}
        outputs = {k: s.run(None, feed) for k, s in sessions.items()}
        times = {k: best_time(lambda s=s: s.run(None, one), repeats=200) for k, s in sessions.items()}
    names = [o.name for o in sessions["float"].get_outputs()]
    kinds = list(paths)
    rows = [["file size (kB)", *(f"{sizes[k] / 1000:.0f}" for k in kinds)],
            ["ms per 3 s window, one per call", *(f"{times[k] * 1000:.2f}" for k in kinds)]]
    for i, name in enumerate(names):
        rows.append([f"largest |difference| from float, {name} ({len(windows)} windows)",
                     *(f"{np.abs(outputs[k][i] - outputs['float'][i]).max():.1e}" for k in kinds)])
    print(f"the engine's agreement bound at load: {AGREEMENT_TOLERANCE:g}")
    print_table(["measure", "float weights", "int8 weights (shipped)", "dynamic int8"], rows)


if __name__ == "__main__":
    main()
