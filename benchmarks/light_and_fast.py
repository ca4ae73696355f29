"""Issue 25's figures from one run, beside what the issue measured before and its goals.

One core (this process and its children pinned to one CPU: `--cpu`, by default the first), one thread per library:
- `emolive.analyze` end to end, `emolive score`'s default table (one row per file: analyze less the
  turns, which it does not use; also with `--hop 3`) and the front end alone (`compute`) on 240 s of RAVDESS speech, x
  real time (best of three), the front end also as a ratio to its references in the same run
  (benchmarks/frontend.py's torchaudio fbank + Praat pitch: machines and loads move both alike),
  and where analyze's time goes (cProfile: the VAD, the model, the
  front end; shares of the profiled total);
- a no-extras install: the wheel in a fresh venv, its size and whether torch is in it
  (benchmarks/base_install.py's code); then the `[gui]` extra's pinned packages added to it;
- in that venv, as a `pip install emolive[gui]` user has it (after a first run):
  peak RSS (each process's own VmHWM) of `emolive stream`, `emolive gui --screenshot` (offscreen Qt; it plays the
  file as fast as it can, in offline batches) and `emolive score` on one 30-minute file of looped
  EmoDB speech (benchmarks/long_file_memory.py's file), and of the gui on the demo clip, with the
  wheel's front-end kernels compiled ahead of time (no numba imported);
- start-up of `emolive --help`, `emolive models` and `trainer --help` in this (full) install, best
  of three.
The "before" column is issue 25's own report (one core of this machine, before the work).
Run: .venv/bin/python benchmarks/light_and_fast.py [--cpu N]
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, best_time, corpus_speech, cpu_model, peak_rss_mb, print_table  # first: one thread each

import soundfile as sf

from base_install import best_wall_s, fresh_install, has_torch, size_mb
from frontend import references
from long_file_memory import write_file

import emolive
from emolive.engine.batch import ScoreOptions, analyze_file
from emolive.engine.features import compute
from emolive.engine.session import DEMO_CLIP

BIN = Path(sys.executable).parent
SECONDS = 240.0
# each part's entry points, (file suffix, function): their cumulative time is the part's
PARTS = {"VAD": [("engine/vad.py", "push"), ("engine/vad.py", "flush")],
         "model": [("plugins/student/plugin.py", "predict_batch")],
         "front end": [("engine/features/frontend.py", "accept"), ("engine/features/frontend.py", "flush")]}


def analysis_figures(tmp: Path) -> dict[str, float]:
    """x real time of analyze and of the front end alone, and the profiled shares of analyze's parts."""
    speech = corpus_speech("ravdess", SECONDS)
    path = tmp / "speech.flac"
    sf.write(path, speech, 16000)
    model = emolive.load_model("student")
    emolive.analyze(path, model=model)  # warm: onnxruntime's first runs
    refs = references(speech)
    front_end_s = best_time(lambda: compute(speech))
    figures = {"analyze": SECONDS / best_time(lambda: emolive.analyze(path, model=model)),
               "score": SECONDS / best_time(lambda: analyze_file(path, model, ScoreOptions())),
               "score hop 3": SECONDS / best_time(lambda: analyze_file(path, model, ScoreOptions(hop=3.0))),
               "front end": SECONDS / front_end_s,
               "front end vs reference": (best_time(refs["fbank"]) + best_time(refs["praat"])) / front_end_s}
    profile = cProfile.Profile()
    profile.runcall(emolive.analyze, path, model=model)
    stats = pstats.Stats(profile).stats  # (file, line, function) -> (calls, ..., own time, cumulative, callers)
    total = sum(own for _, _, own, _, _ in stats.values())
    for part, entries in PARTS.items():
        figures[f"{part} share"] = sum(cumulative for (file, _, function), (_, _, _, cumulative, _) in stats.items()
                                       if any(file.endswith(f) and function == name for f, name in entries)) / total
    return figures


def install_figures(tmp: Path) -> tuple[Path, dict[str, object]]:
    """A fresh no-extras venv, its size and whether torch came with it; then `[gui]`'s pins added."""
    venv = fresh_install(tmp)
    figures = {"size": size_mb(venv), "torch": has_torch(venv)}
    pins = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()
            if line.lower().startswith(("pyside6-essentials==", "pyqtgraph=="))]
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *pins], check=True, capture_output=True)
    return venv / "bin", figures


def memory_figures(tmp: Path, bin_dir: Path) -> dict[str, float]:
    """Peak RSS of stream, gui and score over one 30-minute file (and of the gui on the demo clip)."""
    path = write_file(tmp / "long.flac", 30, "speech")
    emolive_ = str(bin_dir / "emolive")
    subprocess.run([emolive_, "-q", "stream", "--no-publish", "--json", "--source", str(DEMO_CLIP)], check=True,
                   capture_output=True)  # first run: Python's byte code compiled into the install

    def gui(source: Path) -> float:
        return peak_rss_mb([emolive_, "-q", "gui", "--source", str(source), "--screenshot", str(tmp / "gui.png")],
                           env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})

    return {"stream": peak_rss_mb([emolive_, "-q", "stream", "--no-publish", "--json", "--source", str(path)]),
            "gui": gui(path), "gui demo": gui(DEMO_CLIP),
            "score": peak_rss_mb([emolive_, "-q", "score", str(path), "--out", str(tmp / "out.csv")])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=int, default=min(os.sched_getaffinity(0)),
                        help="the one CPU to run on (default: the first allowed; pick an idle one)")
    os.sched_setaffinity(0, {parser.parse_args().cpu})  # children inherit it
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        speed = analysis_figures(root)
        bin_dir, install = install_figures(root)
        memory = memory_figures(root, bin_dir)
    startup = {name: best_wall_s(args) for name, args in (
        ("help", [str(BIN / "emolive"), "--help"]), ("models", [str(BIN / "emolive"), "models"]),
        ("trainer", [str(BIN / "trainer"), "--help"]))}
    print(f"one core of {cpu_model()}; load average {os.getloadavg()[0]:.1f}; {time.perf_counter() - started:.0f} s; "
          "stream, gui and score in a fresh `pip install emolive[gui]` venv")
    print_table(["measure", "before (issue 25)", "now", "goal"], [
        [f"emolive.analyze, {SECONDS:g} s of speech (x real time)", "140x", f"{speed['analyze']:.0f}x", ">= 1000x"],
        [f"emolive score's file row (its default table), {SECONDS:g} s of speech", "-", f"{speed['score']:.0f}x",
         ">= 1000x"],
        ["the same with --hop 3 (the file's values the same; its window means on a 3 s grid)", "-",
         f"{speed['score hop 3']:.0f}x", ""],
        ["front end alone, x real time (x torchaudio fbank + Praat pitch, same run)", "1539x (4.8x)",
         f"{speed['front end']:.0f}x ({speed['front end vs reference']:.1f}x)", ">= 1500x"],
        ["share of analyze: VAD / model / front end", "53 % / 40 % / 11 %",
         " / ".join(f"{100 * speed[f'{p} share']:.0f} %" for p in PARTS), ""],
        ["`pip install emolive` (no extras): size, torch", "~4.4 GB, torch + CUDA",
         f"{install['size']:.0f} MB, {'torch' if install['torch'] else 'no torch'}", "no torch"],
        ["peak RSS, emolive stream, 30-min file", "259 MB (demo clip)", f"{memory['stream']:.0f} MB", "<= 200 MB"],
        ["peak RSS, emolive gui, demo clip", "1250 MB", f"{memory['gui demo']:.0f} MB", "<= 400 MB"],
        ["peak RSS, emolive gui, 30-min file", "-", f"{memory['gui']:.0f} MB", "<= 400 MB"],
        ["peak RSS, emolive score, 30-min file", "840 MB", f"{memory['score']:.0f} MB", "bounded"],
        ["emolive --help", "-", f"{startup['help']:.2f} s", ""],
        ["emolive models", "8.3 s", f"{startup['models']:.2f} s", "<= 1 s"],
        ["trainer --help", "2-4 s", f"{startup['trainer']:.2f} s", "<= 0.5 s"],
    ])


if __name__ == "__main__":
    main()
