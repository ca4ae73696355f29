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

#: the training options of the paper-shape tables (results.py, distill.py) as they were measured:
#: `trainer train`'s defaults before those became the shipped recipe (trainer/config.py)
TABLE_RECIPE = {"epochs": 60, "patience": 10, "epoch_clips": 0}


def cell(values) -> str:
    """'mean ± std' of a table cell's values (seeds), three decimals."""
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


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


#: vector extensions, widest first: the widest one present decides which float kernels torch runs
SIMD_FLAGS = ("avx512f", "avx2", "avx", "sse4_2", "asimd")


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """Where a stored result was measured: training numbers move with the CPU by about their seed
    spread. The name alone is not enough (two machines named "AMD EPYC" trained one seed to
    different numbers), so the family, model and widest vector extension follow it, e.g.
    "AMD EPYC (family 25, model 1, avx2)". Without /proc/cpuinfo: platform's guess."""
    try:
        first = cpuinfo.read_text().split("\n\n", 1)[0]  # the first processor's block
    except OSError:
        return platform.processor() or platform.machine()
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first.splitlines())}
    flags = set(fields.get("flags", fields.get("Features", "")).split())
    details = [f"{label} {fields[key]}" for key, label in (("cpu family", "family"), ("model", "model"))
               if key in fields]
    details += [f for f in SIMD_FLAGS if f in flags][:1]
    name = fields.get("model name", platform.machine())
    return f"{name} ({', '.join(details)})" if details else name


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


def peak_rss_mb(args: list[str], env: dict[str, str] | None = None, poll_s: float = 0.02) -> float:
    """Run a command to its end (output discarded; a failure is an error) and return its peak
    resident memory in MB: its own VmHWM, read from /proc while it runs. Not wait4's ru_maxrss,
    which for a child starts at the size of the process that forked it (this benchmark's, with
    numpy, numba and a model loaded), so every small command would read as large as its parent."""
    import subprocess

    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    status, peak = Path(f"/proc/{process.pid}/status"), 0.0
    while process.poll() is None:
        try:
            hwm = next((line for line in status.read_text().splitlines() if line.startswith("VmHWM:")), None)
        except OSError:  # it ended between poll() and the read
            break
        if hwm is not None:
            peak = max(peak, int(hwm.split()[1]) / 1024)
        time.sleep(poll_s)
    if process.wait() != 0:
        raise SystemExit(f"{' '.join(args[:3])} failed: {process.stderr.read().decode()[-500:]}")
    return peak
