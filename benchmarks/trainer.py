"""Training throughput and student inference cost on this machine.

One epoch on all of RAVDESS (1434 clips) for GRU and TCGRU (+MTL), with the machine's cores;
then the default student's time per 3 s window on one thread, torch next to onnxruntime.
Run: .venv/bin/python benchmarks/trainer.py
"""
from __future__ import annotations

import tempfile
import time

from _common import SHARED, best_time, print_table

import numpy as np
import onnxruntime as ort
import torch

from emolive.engine.plugin import load_model
from emolive.trainer.data import FeatureCache
from emolive.trainer.export import export_onnx
from emolive.trainer.pipeline import DEFAULT_CACHE, class_names_of, ensure_splits, featurise, load_utterances, by_split
from emolive.trainer.train import TrainConfig, train


def epoch_rows() -> list[list[str]]:
    utts = ensure_splits(load_utterances([str(SHARED / "corpora" / "ravdess" / "manifest.csv")]), 0, 0.1, 0.0)
    classes = class_names_of(utts)
    cache = FeatureCache(DEFAULT_CACHE)
    tr = featurise(by_split(utts, "train"), classes, cache, progress=False)
    va = featurise(by_split(utts, "val"), classes, cache, progress=False)
    rows = []
    for arch in ("gru", "tcgru"):
        t0 = time.perf_counter()
        r = train(tr, va, classes, TrainConfig(arch=arch, epochs=1), log=lambda _: None)
        wall = time.perf_counter() - t0
        rows.append([f"{arch.upper()} + MTL, one epoch ({len(tr)} clips)", f"{r.utterances_per_s:.0f} utt/s",
                     f"{r.epoch_seconds:.2f} s train, {wall:.2f} s with validation"])
    return rows


def window_rows() -> list[list[str]]:
    torch.set_num_threads(1)
    plugin = load_model("student")
    window = np.random.default_rng(0).standard_normal((150, 43)).astype(np.float32)
    per = lambda fn: best_time(lambda: [fn() for _ in range(200)], repeats=5) / 200
    t_torch = per(lambda: plugin.predict(window, np.zeros(0, np.float32)))
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(plugin.model, f"{tmp}/student.onnx")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), opts)
        t_onnx = per(lambda: sess.run(None, {"features": window[None]}))
    return [["student, torch (emolive's path)", f"{t_torch * 1e3:.2f} ms", "1.00"],
            ["student, onnxruntime (reference)", f"{t_onnx * 1e3:.2f} ms", f"{t_onnx / t_torch:.2f}"]]


def main() -> None:
    print(f"{torch.get_num_threads()} threads for training\n")
    print_table(["training", "throughput", "epoch time"], epoch_rows())
    print()
    print_table(["3 s window (150 frames), one thread", "time", "ratio to torch"], window_rows())


if __name__ == "__main__":
    main()
