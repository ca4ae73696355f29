"""The light engine against the torch path, side by side from one run (issue: the student runs without torch).

Both columns run the same default student bundle through the same engine; only the model plugin
differs: `student` (onnxruntime, no torch imported) and `student-torch` (torch, one thread).
- peak RSS and launch -> first estimate: `emolive stream --source <demo clip> --no-publish --json` as a
  fresh process (numba cache warm), its maximum resident set from wait4, and the time from launch to
  its first estimate on stdout (which comes after the first processed block; an upper bound for it);
- `emolive --help`: the light CLI, against the same CLI with torch imported first, as it was before;
- model per 3 s window, one thread, one window per call (the live path);
- offline end to end, one core: file decode, front end, windows, model in batches, publish (pinned);
- live p99 block in -> received by a SUB process, paced at real time (benchmarks/engine_latency.py's code).
Run: .venv/bin/python benchmarks/light_engine.py [--latency-seconds 30] [--throughput-seconds 120]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from _common import REPO, best_time, corpus_speech, print_table  # first: it sets one thread for every library

import numpy as np

import engine_latency  # its subscriber, port picking, latency and throughput code

from emolive.engine.session import DEMO_CLIP
from emolive.engine.features import compute
from emolive.engine.plugin import load_model


PATHS = {"torch": "student-torch", "light": "student"}
EMOLIVE = [sys.executable, "-c", "import sys; from emolive.engine.cli import main; sys.exit(main())"]
HELP_WITH_TORCH = [sys.executable, "-c", "import sys, torch; from emolive.engine.cli import main; sys.exit(main())"]
GOALS = {"rss": "<= 250 MB", "first": "<= 0.8 s", "help": "<= 0.3 s", "window": "<= 1.0 ms", "offline": ">= 1000x",
         "p99": "<= 5 ms"}


def stream_process(model: str) -> tuple[float, float]:
    """Peak RSS (MB) and seconds from launch to the first estimate of `emolive stream` on the demo clip."""
    start = time.perf_counter()
    proc = subprocess.Popen([*EMOLIVE, "stream", "--source", str(DEMO_CLIP), "--no-publish", "--json",
                             "--model", model], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    proc.stdout.readline()
    first = time.perf_counter() - start
    proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, f"emolive stream --model {model} failed"
    return usage.ru_maxrss / 1024, first


def help_seconds(command: list[str]) -> float:
    return best_time(lambda: subprocess.run([*command, "--help"], cwd=REPO, check=True, capture_output=True), repeats=5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency-seconds", type=float, default=30.0)
    ap.add_argument("--throughput-seconds", type=float, default=120.0)
    ap.add_argument("--corpus", default="ravdess")
    args = ap.parse_args()
    results: dict[str, dict[str, float]] = {name: {} for name in PATHS}
    for name, model in PATHS.items():
        runs = [stream_process(model) for _ in range(3)]
        results[name]["rss"] = min(r[0] for r in runs)
        results[name]["first"] = min(r[1] for r in runs)
    results["torch"]["help"], results["light"]["help"] = help_seconds(HELP_WITH_TORCH), help_seconds(EMOLIVE)

    import torch  # the torch path's plugin needs it in this process anyway; one thread, as emolive runs it

    torch.set_num_threads(1)
    models = {name: load_model(model) for name, model in PATHS.items()}
    samples = corpus_speech(args.corpus, max(args.latency_seconds, args.throughput_seconds))
    with tempfile.TemporaryDirectory() as tmp:
        live = engine_latency.write_flac(samples[:int(16000 * args.latency_seconds)], tmp, "live.flac")
        for name, model in models.items():
            address = f"tcp://127.0.0.1:{engine_latency.free_port()}"
            subscriber = engine_latency.start_subscriber(address)
            e2e, _, _ = engine_latency.latency(model, live, address, subscriber)
            results[name]["p99"] = float(np.percentile(e2e, 99))
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # the rest on one core
        offline = engine_latency.write_flac(samples[:int(16000 * args.throughput_seconds)], tmp, "offline.flac")
        for name, model in models.items():
            _, results[name]["offline"] = engine_latency.throughput(model, offline, args.throughput_seconds)
    frames = compute(samples[:16000 * 60])
    for name, model in models.items():
        results[name]["window"] = engine_latency.model_ms_per_window(model, frames, 1)

    t, light = results["torch"], results["light"]
    rows = [
        ["peak RSS, emolive stream (demo clip, --no-publish)", f"{t['rss']:.0f} MB", f"{light['rss']:.0f} MB",
         f"{light['rss'] / t['rss']:.2f}", GOALS["rss"]],
        ["launch -> first estimate (warm numba cache)", f"{t['first']:.2f} s", f"{light['first']:.2f} s",
         f"{light['first'] / t['first']:.2f}", GOALS["first"]],
        ["emolive --help", f"{t['help']:.2f} s", f"{light['help']:.2f} s", f"{light['help'] / t['help']:.2f}",
         GOALS["help"]],
        ["model per 3 s window, one thread", f"{t['window']:.2f} ms", f"{light['window']:.2f} ms",
         f"{light['window'] / t['window']:.2f}", GOALS["window"]],
        ["offline end to end, one core (x real time, CPU)", f"{t['offline']:.0f}x", f"{light['offline']:.0f}x",
         f"{light['offline'] / t['offline']:.2f}", GOALS["offline"]],
        ["live p99 block in -> SUB received", f"{t['p99']:.1f} ms", f"{light['p99']:.1f} ms",
         f"{light['p99'] / t['p99']:.2f}", GOALS["p99"]],
    ]
    print(f"default student; torch = --model student-torch, light = --model student (onnxruntime); live "
          f"{args.latency_seconds:g} s paced, offline {args.throughput_seconds:g} s ({args.corpus}); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print_table(["measure", "torch path", "light path", "light / torch", "goal"], rows)


if __name__ == "__main__":
    main()
