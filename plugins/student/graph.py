"""The runtime graph of a student: the torch module exported to ONNX, stamped with its weights' digest.

The light engine runs this graph in onnxruntime and never imports torch. Everything the model
does per window is inside it, once: the gain removal from the window's loudest frame, the
normalisation buffers, the masked pooling, the 1-7 squashing and the class softmax. Inputs are
`features` [batch, time, input_dim] float32 and `lengths` [batch] int64 (real frames per row; the
rest is padding), so offline batches of unequal windows run in one call. The graph carries the
SHA-256 of the model.safetensors it was made from as metadata (`WEIGHTS_DIGEST_KEY`), which is
how a loader refuses a graph that no longer matches the bundle's source of truth.

An int8 bundle's graph stores its weights as int8 too (`int8_initializers`): each weight matrix
whose values are, to float32 rounding, int8 values times one scale per output row (what
engine.bundle.quantise_int8 stored, now dequantised and maybe gate-reordered by the exporter) is
kept as those int8 values and scales behind a DequantizeLinear, which onnxruntime folds back into
the same float weights at load. The file shrinks to about a third and computes what the float
graph did; a float bundle's weights are not of that form and stay float.
"""
from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch

from emolive.engine.bundle import check_file_target, replace_file
from emolive.plugins.student.model import StudentModel
from emolive.plugins.student.spec import GRAPH_INPUTS, GRAPH_OUTPUTS, WEIGHTS_DIGEST_KEY

OPSET = 17


class _Exportable(torch.nn.Module):
    """The model with a fixed output tuple and the class softmax, which the runtime would otherwise redo."""

    def __init__(self, model: StudentModel):
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor, lengths: torch.Tensor):
        out = self.model(features, lengths)
        return out["avd"], torch.softmax(out["logits"], dim=1), out["embedding"]


def export_graph(model: StudentModel, path: str | Path, weights_sha256: str = "",
                 metadata: Mapping[str, str] | None = None) -> Path:
    """Write `model` as an ONNX graph with dynamic batch and time axes (opset 17) and its `metadata`
    props (trainer.export's, for a graph alone), in one write: the file is replaced by a rename
    (engine.bundle.replace_file), never written through a link, and a failed write leaves the old
    file (the props were a second write, which a full disk failed after the first had replaced it).
    A target that cannot be a file (a folder, a device, no folder to hold it) is refused before the
    export runs."""
    import onnx  # only the exporter needs it

    path, buffer = Path(path), io.BytesIO()
    check_file_target(path)
    example = (torch.zeros(2, 150, model.input_dim), torch.tensor([150, 100]))
    with warnings.catch_warnings():
        # The exporter warns that a GRU without an explicit h0 may fix the batch size; the initial
        # state it emits is shaped from the input at run time, which tests/test_light_engine.py checks.
        # The rest is the exporter's own noise: its deprecation, and tracing the GRU's Python shape checks.
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            _Exportable(model.eval()), example, buffer, dynamo=False, opset_version=OPSET,
            input_names=list(GRAPH_INPUTS), output_names=list(GRAPH_OUTPUTS),
            dynamic_axes={"features": {0: "batch", 1: "time"}, "lengths": {0: "batch"},
                          **{name: {0: "batch"} for name in GRAPH_OUTPUTS}},
        )
    graph = onnx.load_from_string(buffer.getvalue())
    int8_initializers(graph)
    props = {**(metadata or {}), **({WEIGHTS_DIGEST_KEY: weights_sha256} if weights_sha256 else {})}
    if props:
        onnx.helper.set_model_props(graph, props)
    replace_file(path, graph.SerializeToString())
    return path


def int8_initializers(graph) -> int:
    """Replace every float initializer of 2+ dims that is int8 values times a scale per slice
    along one axis (within float32 rounding: 1e-6 of its largest value) by those int8 values, the
    scales and a DequantizeLinear giving the same name; returns how many were replaced."""
    import numpy as np
    from onnx import helper, numpy_helper

    replaced, nodes = 0, []
    for init in list(graph.graph.initializer):
        w = numpy_helper.to_array(init)
        if w.dtype != np.float32 or w.ndim < 2 or not np.abs(w).max(initial=0.0) > 0:
            continue
        for axis in range(w.ndim):
            if w.shape[axis] in (1, w.size):  # one scale for all, or one per element: not a quantised matrix
                continue
            rows = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
            scale = (np.abs(rows).max(1) / np.float32(127.0)).astype(np.float32)
            scale = np.where(scale > 0, scale, np.float32(1.0))
            q = np.clip(np.round(rows / scale[:, None]), -127, 127).astype(np.int8)
            if np.abs(q * scale[:, None] - rows).max() > 1e-6 * np.abs(w).max():
                continue
            shaped = np.moveaxis(q.reshape(np.moveaxis(w, axis, 0).shape), 0, axis)
            graph.graph.initializer.remove(init)
            graph.graph.initializer.extend([numpy_helper.from_array(shaped, init.name + "_int8"),
                                            numpy_helper.from_array(scale, init.name + "_scale")])
            nodes.append(helper.make_node("DequantizeLinear", [init.name + "_int8", init.name + "_scale"], [init.name],
                                          name=init.name + "_dequantised", axis=axis))
            replaced += 1
            break
    for node in reversed(nodes):  # before every node that reads them
        graph.graph.node.insert(0, node)
    return replaced
