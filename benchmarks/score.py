"""`emolive score` speed on the shared corpora, one core: files per second and x real time.

Ours: `emolive score` over every k-th file of each corpus's manifest (one process, the model
loaded once, one row per file = the whole-recording estimate plus the windows the live path makes).
Reference: what scoring a folder took before `score` existed: one `emolive stream --source FILE
--no-publish --json` process per file (interpreter, imports and model load paid per file).
Both are pinned to one CPU core (taskset) and run one after the other in this one run.
Run: .venv/bin/python benchmarks/score.py [--files-per-corpus 100] [--reference-files 5]
"""
from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import SHARED, print_table  # first: it sets one thread for every library

import soundfile as sf

CORPORA = ("emodb", "ravdess", "ased", "baved")
EMOLIVE = str(Path(sys.executable).parent / "emolive")
ONE_CORE = ["taskset", "-c", "0"]


def corpus_files(corpus: str, count: int) -> list[Path]:
    root = SHARED / "corpora" / corpus
    with open(root / "manifest.csv", newline="") as f:
        paths = [root / row["path"] for row in csv.DictReader(f)]
    return paths[::max(1, len(paths) // count)][:count]


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(ONE_CORE + command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files-per-corpus", type=int, default=100)
    parser.add_argument("--reference-files", type=int, default=5, help="files per corpus for the reference")
    args = parser.parse_args()
    rows = []
    for corpus in CORPORA:
        files = corpus_files(corpus, args.files_per_corpus)
        audio_s = sum(sf.info(p).duration for p in files)
        with tempfile.TemporaryDirectory() as tmp:
            ours = timed([EMOLIVE, "-q", "score", *map(str, files), "--out", f"{tmp}/out.csv"])
        reference_files = files[:args.reference_files]
        reference = sum(timed([EMOLIVE, "-q", "stream", "--source", str(p), "--no-publish", "--json"])
                        for p in reference_files)
        ref_audio = sum(sf.info(p).duration for p in reference_files)
        ours_fps, ref_fps = len(files) / ours, len(reference_files) / reference
        rows.append([corpus, f"{len(files)}", f"{audio_s / len(files):.2f}", f"{ours_fps:.1f}",
                     f"{audio_s / ours:.0f}x", f"{ref_fps:.2f}", f"{ref_audio / reference:.1f}x",
                     f"{ours_fps / ref_fps:.0f}x"])
    print_table(["corpus", "files", "mean s/file", "score files/s", "score x real time",
                 "stream-per-file files/s", "stream-per-file x real time", "score / stream-per-file"], rows)


if __name__ == "__main__":
    main()
