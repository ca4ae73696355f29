"""The voice activity detector's cost: one graph call per block (engine.vad) against one per 32 ms chunk.

Both columns run Silero's sequence graph, shipped in engine/data, on the same speech in one
process on one thread; the per-chunk column calls it as the engine did before (one 512-sample
chunk and its context per call), so the ratio is what batching the calls saves. Flags are
checked equal. Also: `emolive.analyze` end to end, x real time, with the engine as it is.
Run: .venv/bin/python benchmarks/vad_calls.py [--seconds 300]
"""
from __future__ import annotations

import argparse
import time

from _common import best_time, corpus_speech, print_table  # first: it sets one thread for every library

import numpy as np

import emolive
from emolive.engine.features import FrontEndConfig
from emolive.engine.runner import OFFLINE_BLOCK_SIZE
from emolive.engine.vad import CHUNK, CONTEXT, THRESHOLD, SpeechDetector, _session


def per_block(x: np.ndarray) -> np.ndarray:
    """engine.vad as the runner drives it offline: blocks of OFFLINE_BLOCK_SIZE samples."""
    detector = SpeechDetector(FrontEndConfig())
    flags = [detector.push(x[i:i + OFFLINE_BLOCK_SIZE]) for i in range(0, len(x), OFFLINE_BLOCK_SIZE)]
    return np.concatenate([*flags, detector.flush()])


def per_chunk(x: np.ndarray) -> np.ndarray:
    """One call per 512-sample chunk: the chunk probabilities above the threshold."""
    session, context = _session(), np.zeros(CONTEXT, np.float32)
    h = c = np.zeros((1, 1, 128), np.float32)
    probs = []
    for start in range(0, len(x) - CHUNK + 1, CHUNK):
        prob, h, c = session.run(None, {"input": np.concatenate([context, x[start:start + CHUNK]])[None], "h": h, "c": c})
        context = x[start + CHUNK - CONTEXT:start + CHUNK]
        probs.append(prob[0])
    return np.asarray(probs) >= THRESHOLD


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300)
    args = parser.parse_args()
    x = corpus_speech("ravdess", args.seconds).astype(np.float32)
    seconds = len(x) / 16000
    block_s = best_time(lambda: per_block(x))
    chunk_s = best_time(lambda: per_chunk(x))
    chunks = len(x) // CHUNK
    engine_chunks = SpeechDetector(FrontEndConfig())
    engine_chunks._run(x[:chunks * CHUNK])
    assert np.array_equal(engine_chunks._probs >= THRESHOLD, per_chunk(x)), "the two call patterns disagree"
    model = emolive.load_model("student")
    started = time.perf_counter()
    emolive.analyze(x, sample_rate=16000, model=model)
    analyze_s = time.perf_counter() - started
    print_table(["measure", "one call per block (engine)", "one call per chunk (before)", "before / engine"], [
        ["VAD x real time", f"{seconds / block_s:.0f}", f"{seconds / chunk_s:.0f}", f"{chunk_s / block_s:.2f}"],
        ["VAD CPU s per audio s", f"{block_s / seconds:.4f}", f"{chunk_s / seconds:.4f}", ""],
        [f"emolive.analyze x real time ({seconds:.0f} s of RAVDESS speech, default student)",
         f"{seconds / analyze_s:.0f}", "", ""],
    ])


if __name__ == "__main__":
    main()
