"""Training throughput on this machine.

One epoch on all of RAVDESS (1434 clips) for GRU and TCGRU (+MTL), with the machine's cores.
(The student's time per window, torch next to onnxruntime, is measured by benchmarks/light_engine.py.)
Run: .venv/bin/python benchmarks/training_speed.py
"""
from __future__ import annotations

import time

from _common import SHARED, print_table

import torch

from emolive.trainer.data import FeatureCache
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


def main() -> None:
    print(f"{torch.get_num_threads()} threads for training\n")
    print_table(["training", "throughput", "epoch time"], epoch_rows())


if __name__ == "__main__":
    main()
