"""Derive engine/data/silero_vad_16k_encoder.onnx from Silero's sequence graph (silero-vad 6.2.3).

Silero's graph opens with its STFT as a 1-channel convolution (258 filters of 256 taps: a Hann
window times the DFT's cosines and sines), which was a third of the detector's time on one core
(onnxruntime's profile, docs/benchmarks.md); engine.vad takes the same magnitudes from numpy's FFT
instead. This keeps the rest of the graph, from the magnitudes on (its input renamed "magnitudes"),
with its weights unchanged.
Needs `onnx` (emolive[train]). Run: .venv/bin/python scripts/derive-vad-graph.py
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import onnx.utils

ROOT = Path(__file__).resolve().parent.parent
SILERO = ROOT / "tests" / "data" / "silero_vad_16k_sequence.onnx"  # the package's own graph, the reference
MAGNITUDES = "/stft/Sqrt_output_0"  # the STFT's last output: [chunks, 129 bins, 4 frames]
OUT = ROOT / "engine" / "data" / "silero_vad_16k_encoder.onnx"


def main() -> None:
    onnx.utils.extract_model(str(SILERO), str(OUT), [MAGNITUDES, "h", "c"], ["speech_probs", "hn", "cn"])
    graph = onnx.load(OUT)
    for value in [*graph.graph.input, *graph.graph.value_info]:
        value.name = "magnitudes" if value.name == MAGNITUDES else value.name
    for node in graph.graph.node:
        node.input[:] = ["magnitudes" if name == MAGNITUDES else name for name in node.input]
    onnx.checker.check_model(graph, full_check=True)
    onnx.save(graph, OUT)
    print(f"{OUT.relative_to(ROOT)}: sha256 {hashlib.sha256(OUT.read_bytes()).hexdigest()}", file=sys.stdout)


if __name__ == "__main__":
    main()
