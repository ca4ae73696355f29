"""Front-end speed on 10 minutes of real speech, one thread, side by side with the references.

Prints one table: ours (offline and 20 ms streaming pushes) next to torchaudio's Kaldi fbank,
Praat pitch (parselmouth), both together, and openSMILE eGeMAPS LLDs, as x real time and as a
ratio to our offline front end; then push latency and numba compile / cache-load times.
Run: .venv/bin/python benchmarks/frontend.py [--seconds 600] [--corpus ravdess]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

from _common import best_time, corpus_speech, print_table

import numpy as np
import opensmile
import parselmouth
import torch
import torchaudio

from emolive.engine.features import FrontEnd, compute

FIRST_CALL = ("import time, numpy as np; t=time.perf_counter(); from emolive.engine.features import compute; "
              "compute(np.zeros(16000, np.float32)); print(time.perf_counter()-t)")


def first_call_seconds(cache_dir: str | None) -> float:
    """Import + first compute in a fresh process; a new cache dir forces a real numba compile."""
    env = None
    if cache_dir is not None:
        import os
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True,
                         env=env, check=True)
    return float(out.stdout.strip())


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
    compute(samples[:16000])  # numba cache warm-up is not timed

    wave = torch.from_numpy(samples)[None]
    fbank = lambda: torchaudio.compliance.kaldi.fbank(wave, num_mel_bins=40, frame_length=25,
                                                      frame_shift=20, dither=0)
    snd = parselmouth.Sound(samples.astype(np.float64), 16000)
    praat = lambda: snd.to_pitch_ac(time_step=0.02, pitch_floor=75.0, pitch_ceiling=500.0)
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.LowLevelDescriptors)
    egemaps = lambda: smile.process_signal(samples, 16000)

    t_ours = best_time(lambda: compute(samples))
    t_stream, lat = min((streaming(samples, 320) for _ in range(3)), key=lambda r: r[0])
    t_fbank = best_time(fbank)
    t_praat = best_time(praat)
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
        compile_s = first_call_seconds(cold)
    cached_s = first_call_seconds(None)
    print_table(["20 ms push latency / start-up", "value"], [
        ["push latency p50", f"{np.percentile(lat, 50) * 1e3:.3f} ms"],
        ["push latency p99", f"{np.percentile(lat, 99) * 1e3:.3f} ms"],
        ["push latency max", f"{lat.max() * 1e3:.3f} ms"],
        ["look-ahead (audio past a frame's window end)", f"{FrontEnd().lookahead_ms:.1f} ms"],
        ["first call, numba compile (empty cache)", f"{compile_s:.2f} s"],
        ["first call, numba cache load", f"{cached_s:.2f} s"],
    ])


if __name__ == "__main__":
    main()
