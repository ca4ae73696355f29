"""Derive engine/data/silero_vad_16k_encoder.onnx from Silero's sequence graph (silero-vad 6.2.3).

Two changes, both for speed on one core (onnxruntime's profile, docs/benchmarks.md); Silero's
weights are kept, only rearranged:
- Silero's graph opens with its STFT as a 1-channel convolution (258 filters of 256 taps: a Hann
  window times the DFT's cosines and sines), which was a third of the detector's time; engine.vad
  takes the same magnitudes from numpy's FFT instead, so the graph starts from them (its input
  renamed "magnitudes").
- Its four encoder convolutions see 4, 4, 2 and 1 STFT frames per 32 ms chunk. onnxruntime runs a
  convolution one batch item (chunk) at a time, with a GEMM of 4 columns each, which was 88 % of
  the rest. Here each is one matrix product over every chunk of a call at once: the taps a
  convolution reads are laid side by side (im2col) and its kernel becomes a [taps x in, out]
  matrix. Taps that only ever read the zero padding (encoder.2's first, encoder.3's outer two) are
  left out, which changes no sum.
The LSTM and the output head are Silero's own nodes. tests/test_vad.py holds the result to the
package's whole graph.
Needs `onnx` (emolive[train]). Run: .venv/bin/python scripts/derive-vad-graph.py [--out PATH]
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnx.utils
from onnx import helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
SILERO = ROOT / "tests" / "data" / "silero_vad_16k_sequence.onnx"  # the package's own graph, the reference
MAGNITUDES = "/stft/Sqrt_output_0"  # the STFT's last output: [chunks, 129 bins, 4 frames]
LSTM_INPUT = "/Transpose_output_0"  # the encoder's output as the LSTM's sequence: [chunks, 1, 128]
OUT = ROOT / "engine" / "data" / "silero_vad_16k_encoder.onnx"


def extract_from_magnitudes(path: Path) -> onnx.ModelProto:
    """Silero's graph from the STFT magnitudes on, its input named "magnitudes"."""
    onnx.utils.extract_model(str(SILERO), str(path), [MAGNITUDES, "h", "c"], ["speech_probs", "hn", "cn"])
    graph = onnx.load(path)
    for value in [*graph.graph.input, *graph.graph.value_info]:
        value.name = "magnitudes" if value.name == MAGNITUDES else value.name
    for node in graph.graph.node:
        node.input[:] = ["magnitudes" if name == MAGNITUDES else name for name in node.input]
    return graph


def kernel_matrix(weight: np.ndarray, taps: tuple[int, ...]) -> np.ndarray:
    """A convolution kernel [out, in, k] as the matrix [len(taps) * in, out] that multiplies the
    taps' inputs laid side by side, tap after tap."""
    return np.concatenate([weight[:, :, tap].T for tap in taps]).astype(np.float32)


def encoder_as_matrix_products(weights: dict[str, np.ndarray]) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes from "magnitudes" [n, 129, 4] to LSTM_INPUT [n, 1, 128] computing Silero's encoder
    (kernel 3, padding 1; strides 1, 2, 2, 1) as matrix products over all n chunks, and their
    initializers. Frames are rows: [n, frames, channels] throughout."""
    ints = {"pad_both": [0, 1, 0, 0, 1, 0], "pad_front": [0, 1, 0, 0, 0, 0], "0": [0], "1": [1], "2": [2],
            "4": [4], "5": [5], "6": [6], "pairs": [0, 2, 256], "flat": [0, 128]}
    initializers = [numpy_helper.from_array(np.array(value, np.int64), f"vad.{name}") for name, value in ints.items()]
    taps = {0: (0, 1, 2), 1: (0, 1, 2), 2: (1, 2), 3: (1,)}
    for layer, used in taps.items():
        initializers.append(numpy_helper.from_array(kernel_matrix(weights[f"encoder.{layer}.weight"], used),
                                                    f"encoder.{layer}.matrix"))
        initializers.append(numpy_helper.from_array(weights[f"encoder.{layer}.bias"], f"encoder.{layer}.bias"))

    def node(op: str, inputs: list[str], output: str, **attributes) -> onnx.NodeProto:
        """A node; an input written #name is the integer constant vad.name."""
        return helper.make_node(op, [f"vad.{name[1:]}" if name.startswith("#") else name for name in inputs],
                                [output], **attributes)

    def layer(index: int, taps_side_by_side: str, output: str) -> list[onnx.NodeProto]:
        return [node("MatMul", [taps_side_by_side, f"encoder.{index}.matrix"], f"enc{index}.product"),
                node("Add", [f"enc{index}.product", f"encoder.{index}.bias"], f"enc{index}.sum"),
                node("Relu", [f"enc{index}.sum"], output)]

    nodes = [
        # encoder.0, stride 1 over 4 frames: output t reads padded frames t, t+1, t+2
        node("Transpose", ["magnitudes"], "frames0", perm=[0, 2, 1]),
        node("Pad", ["frames0", "#pad_both"], "padded0"),
        node("Slice", ["padded0", "#0", "#4", "#1"], "tap0.0"),
        node("Slice", ["padded0", "#1", "#5", "#1"], "tap0.1"),
        node("Slice", ["padded0", "#2", "#6", "#1"], "tap0.2"),
        node("Concat", ["tap0.0", "tap0.1", "tap0.2"], "taps0", axis=2),
        *layer(0, "taps0", "out0"),
        # encoder.1, stride 2 over 4 frames: output 0 reads padded frames 0, 1, 2 and output 1 frames 2, 3, 4
        node("Pad", ["out0", "#pad_front"], "padded1"),
        node("Slice", ["padded1", "#0", "#4", "#1"], "frames1.0-3"),
        node("Reshape", ["frames1.0-3", "#pairs"], "pairs1"),  # (0, 1) and (2, 3) side by side
        node("Slice", ["padded1", "#2", "#6", "#1", "#2"], "frames1.2-4"),  # frames 2 and 4
        node("Concat", ["pairs1", "frames1.2-4"], "taps1", axis=2),
        *layer(1, "taps1", "out1"),
        # encoder.2, stride 2 over 2 frames: one output, reading the padding and both frames
        node("Reshape", ["out1", "#flat"], "taps2"),
        *layer(2, "taps2", "out2"),
        # encoder.3, stride 1 over 1 frame: one output, its middle tap on the frame
        *layer(3, "out2", "out3"),
        node("Unsqueeze", ["out3", "#1"], LSTM_INPUT),
    ]
    return nodes, initializers


def derive() -> onnx.ModelProto:
    """Silero's graph from the magnitudes on, with its encoder as matrix products."""
    with tempfile.TemporaryDirectory() as tmp:
        source = extract_from_magnitudes(Path(tmp) / "extracted.onnx")
    weights = {tensor.name: numpy_helper.to_array(tensor) for tensor in source.graph.initializer}
    encoder, initializers = encoder_as_matrix_products(weights)
    nodes = list(source.graph.node)
    rest = nodes[next(i for i, node in enumerate(nodes) if LSTM_INPUT in node.input):]
    read = {name for node in rest for name in node.input}
    graph = helper.make_graph(encoder + rest, source.graph.name, list(source.graph.input), list(source.graph.output),
                              initializers + [tensor for tensor in source.graph.initializer if tensor.name in read])
    model = helper.make_model(graph, opset_imports=source.opset_import, ir_version=source.ir_version,
                              producer_name="emolive scripts/derive-vad-graph.py")
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    out = parser.parse_args().out
    onnx.save(derive(), out)
    print(f"{out}: sha256 {hashlib.sha256(out.read_bytes()).hexdigest()}", file=sys.stdout)


if __name__ == "__main__":
    main()
