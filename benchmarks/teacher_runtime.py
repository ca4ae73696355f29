"""The shipped teacher's two runtimes side by side: PyTorch (Whisper's encoder module and the head
in torch, what a GPU or a wav2vec2/HuBERT teacher runs) against onnxruntime (the encoder graph
built from the same weights and the head's model.onnx: what `--model teacher` runs on a CPU).

Each runtime in its own fresh process pinned to one core, one thread: load time, time per 3 s
window of real speech (the encoder to its deepest layer and the head, one window per call as live), peak
resident memory after loading and scoring ten windows (VmHWM), and whether torch was imported;
then the largest difference of their estimates on the same windows. Printed from one run.
Run: .venv/bin/python benchmarks/teacher_runtime.py
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _common import REPO, cpu_model, print_table  # first: it sets one thread for every library

import numpy as np

CHILD = """
import json, os, sys, time
sys.path.insert(0, {bench!r})
os.sched_setaffinity(0, {{min(os.sched_getaffinity(0))}})
from _common import best_time, corpus_speech
import numpy as np
from emolive.plugins.teacher.plugin import DEFAULT_BUNDLE, load_teacher
start = time.perf_counter()
teacher = load_teacher(DEFAULT_BUNDLE, name="teacher", runtime={runtime!r})
load_s = time.perf_counter() - start
speech = corpus_speech("ravdess", 30.0).astype(np.float32)
windows = [speech[i * 48080:(i + 1) * 48080] for i in range(10)]
outputs = [teacher.predict(None, w) for w in windows]
window_s = best_time(lambda: teacher.predict(None, windows[0]), repeats=10)
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
print(json.dumps({{"load": load_s, "window": window_s, "peak": peak, "torch": "torch" in sys.modules,
                  "avd": [o.avd.tolist() for o in outputs], "head": type(teacher.head).__name__}}))
"""


def run(runtime: str) -> dict:
    code = CHILD.format(bench=str(REPO / "benchmarks"), runtime=runtime)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help, nothing more
    torch_run, graph_run = run("torch"), run("auto")
    assert graph_run["head"] == "StudentPlugin" and torch_run["head"] == "TorchStudentPlugin"
    worst = float(np.abs(np.array(torch_run["avd"]) - np.array(graph_run["avd"])).max())
    print(f"shipped teacher (Whisper base layers 1+5 + GRU), one core, one thread; {cpu_model()}")
    print_table(["measure", "PyTorch", "onnxruntime (shipped on CPU)", "onnxruntime / PyTorch"], [
        ["load (s)", f"{torch_run['load']:.2f}", f"{graph_run['load']:.2f}", f"{graph_run['load'] / torch_run['load']:.2f}"],
        ["ms per 3 s window (encoder + head)", f"{torch_run['window'] * 1000:.1f}", f"{graph_run['window'] * 1000:.1f}",
         f"{graph_run['window'] / torch_run['window']:.2f}"],
        ["x real time per window", f"{3 / torch_run['window']:.0f}", f"{3 / graph_run['window']:.0f}",
         f"{torch_run['window'] / graph_run['window']:.2f}"],
        ["peak RSS MB (load + 10 windows)", f"{torch_run['peak']:.0f}", f"{graph_run['peak']:.0f}",
         f"{graph_run['peak'] / torch_run['peak']:.2f}"],
        ["torch imported", str(torch_run["torch"]), str(graph_run["torch"]), ""],
        ["largest |A/V/D difference| on 10 windows", "0", f"{worst:.1e}", ""],
    ])


if __name__ == "__main__":
    main()
