"""How far does a model's estimate move when the same clip starts a fraction of a frame later?

A codec's start-up delay, a trimmed file or a microphone's buffer moves audio by a few samples, and
the front end's frames (20 ms hop) then fall elsewhere on the waveform. The estimate should barely
move. Each clip (every corpus, clips spread over its manifest) is analysed whole (`emolive.analyze`,
the whole-recording estimate) behind 0, 16, 32, ..., 304 samples of silence: 20 phases of one hop,
0-19 ms. Per clip, the spread (largest less smallest estimate) of each dimension over the phases;
the table gives its median, 95th percentile and largest over clips, on the 1-7 scale, for the
shipped student and, in the same run, the shipped teacher (Whisper's encoder, whose own frames
are not the front end's) as the reference.
Run: .venv/bin/python benchmarks/shift_invariance.py [--per-corpus 5] [--models student teacher]
"""
from __future__ import annotations

import argparse
import csv

from _common import SHARED, print_table  # first: it sets one thread for every library

import numpy as np
import soundfile as sf

import emolive
from emolive.engine.schema import DIMENSIONS

CORPORA = ("emodb", "ravdess", "ased", "baved")
HOP = 320  # the front end's frame shift in samples
PHASES = range(0, HOP, 16)  # 20 phases of one hop, 1 ms apart


def clips(per_corpus: int) -> list[np.ndarray]:
    """`per_corpus` clips of each corpus, spread evenly over its manifest."""
    out = []
    for corpus in CORPORA:
        root = SHARED / "corpora" / corpus
        with open(root / "manifest.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        for row in rows[:: max(1, len(rows) // per_corpus)][:per_corpus]:
            out.append(sf.read(root / row["path"], dtype="float32")[0])
    return out


def spreads(model: str, audio: list[np.ndarray]) -> np.ndarray:
    """[clips, dimensions]: each clip's largest less smallest whole-clip estimate over the phases."""
    plugin = emolive.load_model(model)
    out = []
    for samples in audio:
        wholes = [emolive.analyze(np.concatenate([np.zeros(shift, np.float32), samples]), sample_rate=16000,
                                  model=plugin).whole for shift in PHASES]
        values = np.array([[w[name] for name in DIMENSIONS] for w in wholes])
        out.append(values.max(0) - values.min(0))
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-corpus", type=int, default=5)
    ap.add_argument("--models", nargs="+", default=["student", "teacher"])
    args = ap.parse_args()
    audio = clips(args.per_corpus)
    rows = []
    for model in args.models:
        spread = spreads(model, audio)
        rows.append([model, len(audio), *(" / ".join(f"{v:.3f}" for v in (np.median(spread[:, d]),
                                                                            np.percentile(spread[:, d], 95),
                                                                            spread[:, d].max()))
                                          for d in range(len(DIMENSIONS)))])
    print(f"spread of the whole-clip estimate over {len(PHASES)} phases of one hop (0-19 ms of leading silence), "
          "median / p95 / max over clips, 1-7 scale")
    print_table(["model", "clips", *DIMENSIONS], rows)


if __name__ == "__main__":
    main()
