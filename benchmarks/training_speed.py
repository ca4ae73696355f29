"""Training throughput on this machine.

One epoch on all of RAVDESS (1434 clips) for GRU and TCGRU (+MTL), with the machine's cores.
(The student's time per window, torch next to onnxruntime, is measured by benchmarks/light_engine.py.)
Run: .venv/bin/python benchmarks/training_speed.py
"""
from __future__ import annotations

import argparse
import time

from _common import SHARED, print_table

import torch

from emolive.trainer.config import TrainConfig
from emolive.trainer.pipeline import DataSpec, fit


def epoch_rows() -> list[list[str]]:
    data = DataSpec(data=(str(SHARED / "corpora" / "ravdess" / "manifest.csv"),), val_frac=0.1, test_frac=0.0)
    n_train = sum(u.split == "train" for u in data.split_utterances())
    data.source().features_for(data.utterances(), progress=False)  # computed before any clock starts
    rows = []
    for arch in ("gru", "tcgru"):
        t0 = time.perf_counter()
        r = fit(data, TrainConfig(arch=arch, epochs=1, epoch_clips=0)).result  # one pass over the split
        wall = time.perf_counter() - t0
        rows.append([f"{arch.upper()} + MTL, one epoch ({n_train} clips)", f"{r.utterances_per_s:.0f} utt/s",
                     f"{r.epoch_seconds:.2f} s train, {wall:.2f} s with validation and reading the cache"])
    return rows


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help, nothing more
    print(f"{torch.get_num_threads()} threads for training\n")
    print_table(["training", "throughput", "epoch time"], epoch_rows())


if __name__ == "__main__":
    main()
