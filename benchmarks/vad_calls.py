"""The voice activity detector's cost: the engine's (numpy's FFT, then the rest of Silero's graph, one
call per block) against Silero's whole graph, one call per block (the engine before) and one call per
32 ms chunk (as the silero-vad package runs it).

All three run on the same speech in one process on one thread; Silero's graph is silero-vad
6.2.3's own (tests/data), whose STFT is a convolution. The largest probability difference and the
flags that differ are printed beside the times. Also: `emolive.analyze` end to end, x real time,
with the engine as it is.
Run: .venv/bin/python benchmarks/vad_calls.py [--seconds 300]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import best_time, corpus_speech, print_table  # first: it sets one thread for every library

import numpy as np
import onnxruntime

import emolive
from emolive.engine.features import FrontEndConfig
from emolive.engine.runner import OFFLINE_BLOCK_SIZE
from emolive.engine.vad import CHUNK, CONTEXT, THRESHOLD, SpeechDetector, chunks_with_context

SILERO_GRAPH = Path(__file__).resolve().parent.parent / "tests" / "data" / "silero_vad_16k_sequence.onnx"


def engine_flags(x: np.ndarray) -> np.ndarray:
    """engine.vad as the runner drives it offline: blocks of OFFLINE_BLOCK_SIZE samples, flags per frame."""
    detector = SpeechDetector(FrontEndConfig())
    flags = [detector.push(x[i:i + OFFLINE_BLOCK_SIZE]) for i in range(0, len(x), OFFLINE_BLOCK_SIZE)]
    return np.concatenate([*flags, detector.flush()])


def engine_probs(x: np.ndarray) -> np.ndarray:
    """The same detector's probability for every whole chunk of `x`, a block's whole chunks a call."""
    detector, whole = SpeechDetector(FrontEndConfig()), len(x) // CHUNK * CHUNK
    step = OFFLINE_BLOCK_SIZE // CHUNK * CHUNK
    for i in range(0, whole, step):
        detector._run(x[i:min(i + step, whole)])
    return detector._probs


def silero_probs(x: np.ndarray, session: onnxruntime.InferenceSession, chunks_per_call: int) -> np.ndarray:
    """Silero's whole graph over every whole chunk of `x`, `chunks_per_call` chunks (and their context) a call."""
    context, probs = np.zeros(CONTEXT, np.float32), []
    h = c = np.zeros((1, 1, 128), np.float32)
    whole, step = len(x) // CHUNK * CHUNK, chunks_per_call * CHUNK
    for start in range(0, whole, step):
        part = x[start:min(start + step, whole)]
        prob, h, c = session.run(None, {"input": chunks_with_context(context, part), "h": h, "c": c})
        context = part[-CONTEXT:]
        probs.append(prob)
    return np.concatenate(probs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300)
    args = parser.parse_args()
    x = corpus_speech("ravdess", args.seconds).astype(np.float32)
    seconds = len(x) / 16000
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    silero = onnxruntime.InferenceSession(str(SILERO_GRAPH), options, providers=["CPUExecutionProvider"])
    per_block = OFFLINE_BLOCK_SIZE // CHUNK
    runs = {"engine": lambda: engine_flags(x), "block": lambda: silero_probs(x, silero, per_block),
            "chunk": lambda: silero_probs(x, silero, 1)}
    times = {name: best_time(run) for name, run in runs.items()}
    probs = {"engine": engine_probs(x), "block": runs["block"](), "chunk": runs["chunk"]()}
    model = emolive.load_model("student")
    started = time.perf_counter()
    emolive.analyze(x, sample_rate=16000, model=model)
    analyze_s = time.perf_counter() - started

    def against_engine(name: str) -> str:
        gap = np.abs(probs[name] - probs["engine"])
        return f"{gap.max():.1e} / {np.count_nonzero((probs[name] >= THRESHOLD) != (probs['engine'] >= THRESHOLD))}"

    print_table(["measure", "engine: FFT + graph, per block", "Silero's graph, per block (before)",
                 "Silero's graph, per chunk (package)", "before / engine", "package / engine"], [
        ["VAD x real time", *(f"{seconds / times[n]:.0f}" for n in runs),
         f"{times['block'] / times['engine']:.2f}", f"{times['chunk'] / times['engine']:.2f}"],
        ["VAD CPU ms per audio s", *(f"{1000 * times[n] / seconds:.2f}" for n in runs), "", ""],
        [f"largest probability difference / flags that differ, of {len(probs['engine'])} chunks", "",
         against_engine("block"), against_engine("chunk"), "", ""],
        [f"emolive.analyze x real time ({seconds:.0f} s of RAVDESS speech, default student)",
         f"{seconds / analyze_s:.0f}", "", "", "", ""],
    ])


if __name__ == "__main__":
    main()
