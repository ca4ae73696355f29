"""Soak: `emolive stream` paced at real time for N minutes, with a counting, a stalled and a killed subscriber.

The engine runs as users run it (the console script, a FLAC of real speech with --realtime, the
default student, ZeroMQ on 127.0.0.1). Three subscribers:
- counting: reads every message; checks estimates for gaps and duplicates in seq and compares
  the count with the engine's final status;
- stalled: connects with a small receive queue and never reads (libzmq must drop for it, not
  queue in the engine);
- killed: an `emolive listen` process, SIGKILLed halfway through.
Reported: gaps, duplicates, estimates received vs the final status, the engine's RSS at the first
estimate and at the end, and its range after the first fifth of the run (warm-up), and latency p50/p99 in the first fifth of the run against the last fifth,
as ratios: latency_ms (the engine's, block in -> estimate ready) and capture -> received (wall
clock from the window's last sample being captured to the message reaching the subscriber).
Run (out of the test suite): .venv/bin/python benchmarks/soak.py --minutes 10
"""
from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, corpus_speech, print_table  # first: it sets one thread for every library

import numpy as np
import soundfile as sf
import zmq

EMOLIVE = str(Path(sys.executable).parent / "emolive")
STALLED_RCVHWM = 10
RSS_EVERY_S = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def speech_file(folder: Path, seconds: float) -> Path:
    """Real speech looped to `seconds`, as 16-bit FLAC (the engine decodes it as it would any file)."""
    clips = corpus_speech("emodb", min(seconds, 300.0))
    audio = np.tile(clips, int(np.ceil(seconds * 16000 / len(clips))))[: int(seconds * 16000)]
    path = folder / "soak.flac"
    sf.write(path, audio, 16000, subtype="PCM_16")
    return path


def subscriber(address: str, rcvhwm: int = 1000) -> zmq.Socket:
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, rcvhwm)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(address)
    return sub


def percentiles(values: list[float]) -> tuple[float, float]:
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    seconds = 60.0 * args.minutes
    address = f"tcp://127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory() as tmp:
        clip = speech_file(Path(tmp), seconds)
        counting, stalled = subscriber(address), subscriber(address, STALLED_RCVHWM)
        killed = subprocess.Popen([EMOLIVE, "listen", "--json", "--connect", address], cwd=REPO,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        engine = subprocess.Popen([EMOLIVE, "stream", "--source", str(clip), "--realtime", "--publish", address,
                                   "--json", "--wait-subscriber", "60"], cwd=REPO, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        seqs, latency_ms, capture_to_rx, rss, statuses = [], [], [], [], []
        kill_at, next_rss = time.monotonic() + seconds / 2, 0.0
        while engine.poll() is None or counting.poll(0):
            if counting.poll(200):
                topic, body = counting.recv_multipart()
                received = time.time()
                payload = json.loads(body)
                if topic.startswith(b"avd."):
                    seqs.append(payload["seq"])
                    latency_ms.append(payload["latency_ms"])
                    capture_to_rx.append(1000.0 * (received - payload["wall_end"]))
                else:
                    statuses.append(payload)
            now = time.monotonic()
            if engine.poll() is None and seqs and now >= next_rss:
                rss.append(rss_kib(engine.pid))
                next_rss = now + RSS_EVERY_S
            if killed.poll() is None and now >= kill_at:
                killed.send_signal(signal.SIGKILL)
                killed.wait()
        err = engine.stderr.read()
        counting.close()
        stalled.close()
    if engine.returncode != 0 or not seqs:
        sys.exit(f"engine failed (exit {engine.returncode}): {err}")
    gaps = sum(b - a - 1 for a, b in zip(seqs, seqs[1:]) if b > a + 1)
    duplicates = len(seqs) - len(set(seqs))
    final = statuses[-1]["estimates"] if statuses else None
    fifth = max(1, len(seqs) // 5)
    rows = [["estimates received / final status", f"{len(seqs)} / {final}", "", ""],
            ["gaps in seq (estimates lost)", str(gaps), "", ""],
            ["duplicate seq", str(duplicates), "", ""],
            ["engine RSS (kB), first estimate -> end", f"{rss[0]}", f"{rss[-1]}", f"{rss[-1] / rss[0]:.3f}"]]
    # after warm-up (the first fifth: caches, allocator pools and the killed subscriber's queue
    # settle), resident memory must stay flat: its range over the rest of the run
    settled = rss[len(rss) // 5:]
    rows.append(["engine RSS (kB) after the first fifth: min / max", f"{min(settled)}", f"{max(settled)}",
                 f"+{(max(settled) - min(settled)) / 1024:.2f} MB"])
    for name, values in (("latency_ms", latency_ms), ("capture -> received (ms)", capture_to_rx)):
        first, last = percentiles(values[:fifth]), percentiles(values[-fifth:])
        for label, a, b in (("p50", first[0], last[0]), ("p99", first[1], last[1])):
            rows.append([f"{name} {label}", f"{a:.1f}", f"{b:.1f}", f"{b / a:.2f}"])
    print(f"soak: {args.minutes:g} min paced, hop 0.5 s; killed subscriber SIGKILLed at {seconds / 2:.0f} s; "
          f"stalled subscriber RCVHWM {STALLED_RCVHWM}, never reads")
    print_table(["measure", "first fifth / start", "last fifth / end", "last / first"], rows)
    print(err.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
