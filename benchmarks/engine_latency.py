"""Engine speed with the default student: per-hop latency to a subscriber, and throughput on one core.

Latency: real speech paced at real time (a live source), 3 s windows every 0.5 s, published on
ZeroMQ and received by a SUB socket in another process. Per estimate, "block in -> received" is
from the audio block that completed the window reaching the engine to the message arriving at
the subscriber (the engine's own latency_ms plus the measured ready -> received time).
Throughput: the same path with pacing off (file decode, front end, model, publish) over minutes
of speech, as x real time, per CPU second and by wall clock, with the process pinned to one CPU
core. The model runs on one thread throughout, as `emolive stream` runs it; the latency run is not
pinned (the engine's reader, model and ZeroMQ threads may share the machine's cores as they do
in use) and its subscriber is a separate process.
Run: .venv/bin/python benchmarks/engine_latency.py [--latency-seconds 60] [--throughput-seconds 600]
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import best_time, corpus_speech, print_table  # first: it sets one thread for every library

import numpy as np
import soundfile as sf

from emolive.engine.features import compute
from emolive.engine.plugin import load_model
from emolive.engine.runner import BATCH_SIZE, OFFLINE_BLOCK_SIZE, Runner
from emolive.engine.sinks import Sink, ZmqPublisher
from emolive.engine.sources import FileSource

TARGET_LATENCY_MS = 20.0  # p99, block in -> received, beyond the hop the estimate waits for anyway
TARGET_THROUGHPUT = 200.0  # x real time with pacing off


class ReadyTimes(Sink):
    """Placed before the publisher: when each estimate was ready, and the engine's latency for it."""

    def __init__(self) -> None:
        self.ready: dict[int, tuple[float, float]] = {}

    def emit(self, estimate):
        self.ready[estimate["seq"]] = (time.monotonic(), estimate["latency_ms"])

    def close(self):
        pass


# The subscriber runs as its own process, as a real reader would, and is not pinned to a core. It prints
# "seq arrival age" per estimate: arrival on the monotonic clock (system-wide on Linux, so comparable
# with ours), age = wall time at arrival minus the window's wall_end. It stops when its stdin closes.
SUBSCRIBER = """
import json, sys, time, zmq
sub = zmq.Context().socket(zmq.SUB)
sub.setsockopt(zmq.SUBSCRIBE, b"avd.")
sub.connect(sys.argv[1])
poller = zmq.Poller()
poller.register(sub, zmq.POLLIN)
poller.register(sys.stdin.fileno(), zmq.POLLIN)
lines = []
while sys.stdin.fileno() not in dict(poller.poll()):
    while sub.poll(0):
        payload = json.loads(sub.recv_multipart()[1])
        lines.append(f"{payload['seq']} {time.monotonic()} {time.time() - payload['wall_end']}")
print("\\n".join(lines))
"""


def start_subscriber(address: str) -> subprocess.Popen:
    """Started before this process is pinned to one core, so the subscriber is free to run elsewhere."""
    return subprocess.Popen([sys.executable, "-c", SUBSCRIBER, address], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def latency(model, path: Path, address: str, subscriber: subprocess.Popen) -> tuple[np.ndarray, ...]:
    """Per estimate: block in -> received (ms), engine latency_ms, and audio age at receipt (ms)."""
    ready = ReadyTimes()
    with ZmqPublisher(address) as publisher:
        assert publisher.wait_for_subscriber(60.0), "the subscriber process never subscribed"
        with FileSource(path, realtime=True) as source:
            Runner(source, model, [ready, publisher], live=True).run()
        time.sleep(0.3)
    out, _ = subscriber.communicate(input="stop\n", timeout=30)
    received = {int(seq): (float(arrival), float(age)) for seq, arrival, age in map(str.split, out.splitlines())}
    assert received.keys() == ready.ready.keys(), "the subscriber missed estimates"
    seqs = sorted(received)
    engine_ms = np.array([ready.ready[s][1] for s in seqs])
    e2e_ms = np.array([1000 * (received[s][0] - ready.ready[s][0]) for s in seqs]) + engine_ms
    age_ms = np.array([1000 * received[s][1] for s in seqs])
    return e2e_ms, engine_ms, age_ms


def throughput(model, path: Path, seconds: float, repeats: int = 3) -> tuple[float, float]:
    """x real time by wall clock and by the process's CPU time (all its threads), best of `repeats`.

    CPU time is what one core would need on a quiet machine; wall time also counts waiting for
    the core on a busy one, so on a shared machine both are reported.
    """
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        with ZmqPublisher("tcp://127.0.0.1:*") as publisher, \
                FileSource(path, block_size=OFFLINE_BLOCK_SIZE) as source:  # as `emolive stream` opens a file
            Runner(source, model, [publisher]).run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return seconds / min(walls), seconds / min(cpus)


def model_ms_per_window(model, frames: np.ndarray, batch: int) -> float:
    windows = [frames[i:i + 150] for i in range(0, len(frames) - 150, 25)][:8 * batch]
    samples = [np.zeros(48080, np.float32)] * len(windows)
    t = best_time(lambda: [model.predict_batch(windows[i:i + batch], samples[i:i + batch])
                           for i in range(0, len(windows), batch)])
    return 1000 * t / len(windows)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_flac(samples: np.ndarray, directory: str, name: str) -> Path:
    path = Path(directory) / name
    sf.write(path, samples, 16000, subtype="PCM_16")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency-seconds", type=float, default=60.0)
    ap.add_argument("--throughput-seconds", type=float, default=600.0)
    ap.add_argument("--corpus", default="ravdess")
    args = ap.parse_args()
    address = f"tcp://127.0.0.1:{free_port()}"
    subscriber = start_subscriber(address)
    model = load_model("student")  # onnxruntime, one intra-op thread, as `emolive stream` runs it
    samples = corpus_speech(args.corpus, max(args.latency_seconds, args.throughput_seconds, 120.0))
    with tempfile.TemporaryDirectory() as tmp:
        e2e, engine, age = latency(model, write_flac(samples[:int(16000 * args.latency_seconds)], tmp, "live.flac"),
                                   address, subscriber)
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # throughput: one core
        long = write_flac(samples[:int(16000 * args.throughput_seconds)], tmp, "offline.flac")
        xrt_wall, xrt_cpu = throughput(model, long, args.throughput_seconds)
    frames = compute(samples[:16000 * 120])
    frontend_xrt = 120 / best_time(lambda: compute(samples[:16000 * 120]))
    single, batched = model_ms_per_window(model, frames, 1), model_ms_per_window(model, frames, BATCH_SIZE)
    p = lambda a, q: float(np.percentile(a, q))
    rows = [
        ["p99 block in -> received by SUB", f"<= {TARGET_LATENCY_MS:.0f} ms", f"{p(e2e, 99):.1f} ms",
         f"{p(e2e, 99) / TARGET_LATENCY_MS:.2f}"],
        ["p50 block in -> received by SUB", "", f"{p(e2e, 50):.1f} ms", ""],
        ["p50 / p99 engine latency_ms (block in -> ready)", "", f"{p(engine, 50):.1f} / {p(engine, 99):.1f} ms", ""],
        ["p50 / p99 window end captured -> received", "", f"{p(age, 50):.0f} / {p(age, 99):.0f} ms", ""],
        ["throughput, pacing off, per CPU second, one core", f">= {TARGET_THROUGHPUT:.0f}x",
         f"{xrt_cpu:.0f}x", f"{xrt_cpu / TARGET_THROUGHPUT:.2f}"],
        ["throughput, pacing off, wall clock, one core", f">= {TARGET_THROUGHPUT:.0f}x",
         f"{xrt_wall:.0f}x", f"{xrt_wall / TARGET_THROUGHPUT:.2f}"],
        ["  front end alone (wall, one core)", "", f"{frontend_xrt:.0f}x", ""],
        [f"  model per window, batch of {BATCH_SIZE} / one by one (wall)", "", f"{batched:.2f} / {single:.2f} ms", ""],
    ]
    print(f"default student, onnxruntime on one thread; latency: {len(e2e)} estimates over {args.latency_seconds:g} s "
          f"paced; throughput: {args.throughput_seconds:g} s unpaced ({args.corpus}); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print_table(["measure", "target", "measured", "measured / target"], rows)


if __name__ == "__main__":
    main()
