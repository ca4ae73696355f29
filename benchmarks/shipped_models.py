"""The shipped student and teacher side by side on one CPU core: what a live user pays for each.

Each model runs in its own child process (so its peak resident memory is its own): load time,
one 3 s window's model call (the teacher's includes Whisper base's encoder on the window's
audio), throughput of the live path on 60 s of real speech with pacing off (x real time, one
core), latency of a paced live stream to a ZeroMQ subscriber in another process (block in ->
received, p50/p99), and peak RSS. The last column is teacher / student. Where torch finds a CUDA
GPU the teacher runs there (the student always runs on the CPU).
Run: .venv/bin/python benchmarks/shipped_models.py [--seconds 60] [--latency-seconds 30]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from _common import best_time, corpus_speech, cpu_model, print_table  # first: one thread for every library

import numpy as np

from engine_latency import free_port, latency, start_subscriber, throughput, write_flac

from emolive.engine.features import compute
from emolive.engine.plugin import load_model

MODELS = ("student", "teacher")
WINDOW_FRAMES, WINDOW_SAMPLES = 150, 48080  # the live 3 s window: 150 frames from 48,080 samples


def measure(name: str, seconds: float, latency_seconds: float) -> dict:
    """One model's figures, measured in this (child) process."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    started = time.perf_counter()
    model = load_model(name)
    load_s = time.perf_counter() - started
    speech = corpus_speech("ravdess", max(seconds, latency_seconds))
    frames = compute(speech[: 16000 * 20])
    starts = range(0, len(frames) - WINDOW_FRAMES, 25)
    windows = [(frames[i:i + WINDOW_FRAMES], speech[320 * i:320 * i + WINDOW_SAMPLES]) for i in starts][:24]
    per_window = best_time(lambda: [model.predict_batch([f], [s]) for f, s in windows]) / len(windows)
    with tempfile.TemporaryDirectory() as tmp:
        long = write_flac(speech[: int(16000 * seconds)], tmp, "long.flac")
        wall_x, cpu_x = throughput(model, long, seconds, repeats=2)
        short = write_flac(speech[: int(16000 * latency_seconds)], tmp, "live.flac")
        address = f"tcp://127.0.0.1:{free_port()}"
        e2e_ms, _, _ = latency(model, short, address, start_subscriber(address))
    return {"load_s": load_s, "window_ms": 1000 * per_window, "x_real_time": wall_x, "x_real_time_cpu": cpu_x,
            "p50_ms": float(np.percentile(e2e_ms, 50)), "p99_ms": float(np.percentile(e2e_ms, 99)),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


ROWS = [("load (s)", "load_s", "{:.2f}"), ("model per 3 s window (ms)", "window_ms", "{:.1f}"),
        ("live path, x real time (wall)", "x_real_time", "{:.0f}"), ("live path, x real time (CPU)", "x_real_time_cpu",
                                                                      "{:.0f}"),
        ("latency block in -> SUB p50 (ms)", "p50_ms", "{:.1f}"), ("latency p99 (ms)", "p99_ms", "{:.1f}"),
        ("peak RSS (MB)", "peak_rss_mb", "{:.0f}")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--latency-seconds", type=float, default=30.0)
    ap.add_argument("--child", choices=MODELS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.seconds, args.latency_seconds)))
        return
    found = {}
    for name in MODELS:
        done = subprocess.run([sys.executable, __file__, "--child", name, "--seconds", str(args.seconds),
                               "--latency-seconds", str(args.latency_seconds)], capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"{name}: {done.stderr.strip().splitlines()[-1]}")
        found[name] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"shipped models on one core of {cpu_model()}, {args.seconds:g} s of speech (throughput), "
          f"{args.latency_seconds:g} s paced (latency)")
    print_table(["figure", "student", "teacher (Whisper base:1+5 + GRU)", "teacher / student"],
                [[label, fmt.format(found["student"][key]), fmt.format(found["teacher"][key]),
                  f"{found['teacher'][key] / found['student'][key]:.2g}x"] for label, key, fmt in ROWS])


if __name__ == "__main__":
    main()
