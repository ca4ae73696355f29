"""Helpers shared by the benchmark scripts: single-thread setup, real speech, timing, tables."""
from __future__ import annotations

import csv
import os
import platform
import time
from pathlib import Path
from typing import Callable

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # every measurement here is on one core: import this module first

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOLIVE_SHARED", REPO.parent / "shared"))


def corpus_speech(corpus: str, seconds: float) -> np.ndarray:
    """The first `seconds` of a shared corpus, clips concatenated in manifest order."""
    root = SHARED / "corpora" / corpus
    parts, total = [], 0
    with open(root / "manifest.csv", newline="") as f:
        for row in csv.DictReader(f):
            samples, rate = sf.read(root / row["path"], dtype="float32")
            assert rate == 16000
            parts.append(samples)
            total += len(samples)
            if total >= seconds * rate:
                break
    return np.concatenate(parts)[: int(seconds * 16000)]


def cpu_model() -> str:
    """The processor's name (Linux /proc/cpuinfo, else platform's guess): training numbers move with the
    CPU by about their seed spread, so a stored result says where it was measured."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def best_time(fn: Callable[[], object], repeats: int = 3) -> float:
    """Fastest of `repeats` runs: the least disturbed by other load on a noisy machine."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
