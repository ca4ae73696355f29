"""The live microphone path through a real audio device, beside the same speech from a paced file.

Microphone: a private PulseAudio daemon with a null sink (tests/virtual_mic.py); paplay plays
`--minutes` of RAVDESS speech into it at real time and `emolive stream --device pulse` records its
monitor through ALSA's pulse plugin and PortAudio, publishing on ZeroMQ to a SUB process.
Reference: the first `--reference-minutes` of the same speech through `emolive stream --source FILE
--realtime` (FileSource paces it: no device, no PortAudio), the path benchmarks/engine_latency.py measures.
Both are the real CLI as a subprocess with the default student, 3 s windows every 0.5 s.

Per estimate, "captured -> received by SUB" is the subscriber's wall clock at receipt minus the
window's wall_end, the engine's stamp of when its last block arrived (for the microphone, when
PortAudio handed it over; the device's own buffering before that is not in it). "engine
latency_ms" is block in -> estimate ready. CPU is the emolive process's user+system time (all
threads) from its first estimate to its last, per second of audio in that span, so start-up
(imports, model load, warm-up) is left out. Dropped blocks and skipped windows are the run's
summary line; "missed by SUB" counts published estimates the subscriber never saw.
Run: .venv/bin/python benchmarks/microphone.py [--minutes 5] [--reference-minutes 1]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import REPO, corpus_speech, print_table  # first: it sets one thread for every library

import numpy as np
import soundfile as sf

import engine_latency  # its subscriber, port picking, latency and throughput code



def _load(name: str, path: Path):
    """A module by its file: tests/ is not on a benchmark's sys.path."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


virtual_mic = _load("virtual_mic", REPO / "tests" / "virtual_mic.py")  # lives with the tests that use it

EMOLIVE = str(Path(sys.executable).parent / "emolive")
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
SUMMARY = re.compile(r"(\d+) estimates from ([\d.]+) s of audio; (\d+) windows skipped, (\d+) audio blocks dropped")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a live process and all its threads (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    return (int(fields[11]) + int(fields[12])) * TICK_S


class Run:
    """One `emolive stream` subprocess publishing to a fresh subscriber; estimates and CPU sampled as they come."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.address = f"tcp://127.0.0.1:{engine_latency.free_port()}"
        self.subscriber = engine_latency.start_subscriber(self.address)
        self.process = subprocess.Popen([EMOLIVE, "stream", *args, "--json", "--publish", self.address,
                                         "--wait-subscriber", "60"], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True,
                                        # Ctrl-C as from a terminal: run in the background (`&`), this script
                                        # has SIGINT ignored, and a stream keeps a signal ignored from the start
                                        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.estimates: list[dict] = []
        self.cpu: list[tuple[int, float]] = []  # (estimates so far, CPU seconds), sampled on each estimate
        self._stderr: list[str] = []
        threading.Thread(target=self._read_estimates, daemon=True).start()
        threading.Thread(target=lambda: self._stderr.extend(self.process.stderr), daemon=True).start()

    def _read_estimates(self) -> None:
        for line in self.process.stdout:
            self.estimates.append(json.loads(line))
            cpu = cpu_seconds(self.process.pid)
            if cpu is not None:
                self.cpu.append((len(self.estimates), cpu))

    def wait_for_first_estimate(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.estimates:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"emolive gave no estimate: {''.join(self._stderr)}")
            time.sleep(0.05)

    def finish(self, interrupt: bool) -> dict[str, float]:
        """End the run (Ctrl-C for the microphone; the paced file ends by itself) and measure it."""
        if interrupt:
            self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=120)
        time.sleep(0.5)  # the reader threads take the last lines
        out, _ = self.subscriber.communicate(input="stop\n", timeout=30)
        received = {int(seq): float(age) for seq, _, age in map(str.split, out.splitlines())}
        match = SUMMARY.search("".join(self._stderr))
        if match is None:
            raise SystemExit(f"no summary from emolive: {''.join(self._stderr)}")
        (first, cpu0), (last, cpu1) = self.cpu[0], self.cpu[-1]
        audio_s = self.estimates[last - 1]["end"] - self.estimates[first - 1]["end"]
        ages = 1000 * np.array([received[e["seq"]] for e in self.estimates if e["seq"] in received])
        engine_ms = np.array([e["latency_ms"] for e in self.estimates])
        return {"estimates": len(self.estimates), "audio_s": float(match.group(2)), "cpu_per_s": (cpu1 - cpu0) / audio_s,
                "skipped": int(match.group(3)), "dropped": int(match.group(4)),
                "missed": len(self.estimates) - len(received),
                "age50": float(np.percentile(ages, 50)), "age99": float(np.percentile(ages, 99)),
                "engine50": float(np.percentile(engine_ms, 50)), "engine99": float(np.percentile(engine_ms, 99))}


def microphone(mic, path: Path) -> dict[str, float]:
    run = Run(["--device", virtual_mic.DEVICE], mic.env)
    run.wait_for_first_estimate()
    mic.play(path)
    time.sleep(1.0)  # the last windows of the speech
    return run.finish(interrupt=True)


def paced_file(path: Path) -> dict[str, float]:
    run = Run(["--source", str(path), "--realtime"], dict(os.environ))
    run.wait_for_first_estimate()
    return run.finish(interrupt=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0, help="speech played into the virtual microphone")
    ap.add_argument("--reference-minutes", type=float, default=1.0, help="of it through a paced file")
    ap.add_argument("--corpus", default="ravdess")
    args = ap.parse_args()
    if virtual_mic.missing_reason() is not None:
        raise SystemExit(f"no virtual microphone: {virtual_mic.missing_reason()}")
    samples = corpus_speech(args.corpus, 60 * args.minutes)
    with tempfile.TemporaryDirectory() as tmp:
        speech, reference = Path(tmp) / "speech.wav", Path(tmp) / "reference.wav"
        sf.write(speech, samples, 16000, subtype="PCM_16")
        sf.write(reference, samples[:int(16000 * 60 * args.reference_minutes)], 16000, subtype="PCM_16")
        ref = paced_file(reference)
        mic = virtual_mic.VirtualMicrophone(Path(tmp) / "pulse")
        mic.start()
        try:
            live = microphone(mic, speech)
        finally:
            mic.stop()
    ratio = lambda key: f"{live[key] / ref[key]:.2f}" if ref[key] else "-"
    rows = [[label, fmt.format(ref[key]), fmt.format(live[key]), ratio(key)] for label, key, fmt in [
        ("p50 window end captured -> received by SUB (incl. look-ahead)", "age50", "{:.1f} ms"),
        ("p99 window end captured -> received by SUB (incl. look-ahead)", "age99", "{:.1f} ms"),
        ("p50 engine latency_ms (block in -> ready)", "engine50", "{:.1f} ms"),
        ("p99 engine latency_ms (block in -> ready)", "engine99", "{:.1f} ms"),
        ("CPU per second of audio (emolive, all threads)", "cpu_per_s", "{:.3f} s"),
        ("audio blocks dropped", "dropped", "{:d}"),
        ("windows skipped", "skipped", "{:d}"),
        ("estimates / missed by SUB", "estimates", "{:d}"),
    ]]
    rows[-1][1:] = [f"{ref['estimates']} / {ref['missed']}", f"{live['estimates']} / {live['missed']}", "-"]
    print(f"default student, 3 s windows every 0.5 s; microphone: {live['audio_s']:.0f} s through PulseAudio -> ALSA "
          f"-> PortAudio ({args.minutes:g} min played); reference: {ref['audio_s']:.0f} s paced file; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print_table(["measure", "paced file (reference)", "microphone", "microphone / file"], rows)


if __name__ == "__main__":
    main()
