"""Front-end speed on 10 minutes of real speech, one thread, side by side with the references.

Prints one table: ours (offline and 20 ms streaming pushes) next to torchaudio's Kaldi fbank,
Praat pitch (parselmouth), both together, and openSMILE eGeMAPS LLDs, as x real time and as a
ratio to our offline front end; then push latency and first-call times (the kernels compiled
ahead of time, and numba's JIT fallback).
Run: .venv/bin/python benchmarks/frontend.py [--seconds 600] [--corpus ravdess]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from _common import best_time, corpus_speech, print_table

import numpy as np
import opensmile
import parselmouth
import torch
import torchaudio

from emolive.engine.features import FrontEnd, compute

FIRST_CALL = ("import time, numpy as np; t=time.perf_counter(); from emolive.engine.features import compute; "
              "compute(np.zeros(16000, np.float32)); print(time.perf_counter()-t)")


def first_call_seconds(kernels: str, cache_dir: str | None = None) -> float:
    """Import + first compute in a fresh process, the kernels as EMOLIVE_KERNELS=`kernels` says
    (engine/features/kernels.py); a new numba cache dir forces a real JIT compile."""
    env = dict(os.environ, EMOLIVE_KERNELS=kernels, **({"NUMBA_CACHE_DIR": cache_dir} if cache_dir else {}))
    out = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True,
                         env=env, check=True)
    return float(out.stdout.strip())


def references(samples: np.ndarray) -> dict[str, Callable[[], object]]:
    """The references on 16 kHz `samples`: torchaudio's Kaldi fbank (40 bins, our framing) and
    Praat's autocorrelation pitch (parselmouth) at our 20 ms hop."""
    wave = torch.from_numpy(samples)[None]
    snd = parselmouth.Sound(samples.astype(np.float64), 16000)
    return {"fbank": lambda: torchaudio.compliance.kaldi.fbank(wave, num_mel_bins=40, frame_length=25,
                                                               frame_shift=20, dither=0),
            "praat": lambda: snd.to_pitch_ac(time_step=0.02, pitch_floor=75.0, pitch_ceiling=500.0)}


def streaming(samples: np.ndarray, push: int) -> tuple[float, np.ndarray]:
    fe = FrontEnd()
    lat = np.empty((len(samples) + push - 1) // push)
    t0 = time.perf_counter()
    for k, i in enumerate(range(0, len(samples), push)):
        a = time.perf_counter()
        fe.push(samples[i:i + push])
        lat[k] = time.perf_counter() - a
    fe.flush()
    return time.perf_counter() - t0, lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--corpus", default="ravdess")
    args = ap.parse_args()
    torch.set_num_threads(1)
    samples = corpus_speech(args.corpus, args.seconds)
    dur = len(samples) / 16000
    compute(samples[:16000])  # the kernels' first load is not timed

    refs = references(samples)
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.LowLevelDescriptors)
    egemaps = lambda: smile.process_signal(samples, 16000)

    t_ours = best_time(lambda: compute(samples))
    t_stream, lat = min((streaming(samples, 320) for _ in range(3)), key=lambda r: r[0])
    t_fbank = best_time(refs["fbank"])
    t_praat = best_time(refs["praat"])
    t_smile = best_time(egemaps, repeats=1)
    rtf = lambda t: dur / t
    rows = [
        ["emolive MFB+F0 (43-dim), offline", f"{rtf(t_ours):.0f}x", "1.00"],
        ["emolive MFB+F0, streaming 20 ms pushes", f"{rtf(t_stream):.0f}x", f"{t_ours / t_stream:.2f}"],
        ["torchaudio kaldi.fbank (40 MFB only)", f"{rtf(t_fbank):.0f}x", f"{t_ours / t_fbank:.2f}"],
        ["Praat pitch, parselmouth (F0 only)", f"{rtf(t_praat):.0f}x", f"{t_ours / t_praat:.2f}"],
        ["fbank + Praat pitch together", f"{rtf(t_fbank + t_praat):.0f}x", f"{t_ours / (t_fbank + t_praat):.2f}"],
        ["openSMILE eGeMAPSv02 LLDs", f"{rtf(t_smile):.0f}x", f"{t_ours / t_smile:.2f}"],
    ]
    print(f"{dur / 60:.1f} min of {args.corpus}, one thread; ratio = row speed / emolive offline speed "
          "(below 1: slower than emolive)\n")
    print_table(["front end", "x real time", "ratio"], rows)
    print()
    with tempfile.TemporaryDirectory() as cold:
        compile_s = first_call_seconds("jit", cold)
    cached_s = first_call_seconds("jit")
    built_s = first_call_seconds("auto")
    print_table(["20 ms push latency / start-up", "value"], [
        ["push latency p50", f"{np.percentile(lat, 50) * 1e3:.3f} ms"],
        ["push latency p99", f"{np.percentile(lat, 99) * 1e3:.3f} ms"],
        ["push latency max", f"{lat.max() * 1e3:.3f} ms"],
        ["look-ahead (audio past a frame's window end)", f"{FrontEnd().lookahead_ms:.1f} ms"],
        ["first call, kernels compiled ahead of time (the install's)", f"{built_s:.2f} s"],
        ["first call, numba JIT, cache load (the fallback)", f"{cached_s:.2f} s"],
        ["first call, numba JIT, compile (empty cache)", f"{compile_s:.2f} s"],
    ])


if __name__ == "__main__":
    main()
