"""How far does a model's estimate move when the same clip reaches it a little differently?

Three things every user's audio does that the corpora's does not:
- delay: a codec's start-up delay, a trimmed file or a microphone's buffer moves audio by a few
  samples, and the front end's frames (20 ms hop) fall elsewhere on the waveform. Each clip behind
  0, 1, ..., 19 ms of silence: 20 phases of one hop;
- cut: a recording started late or trimmed by an editor or a detector loses its first tens of
  milliseconds. Each clip with 0, 20, ..., 100 ms cut from its start (whole frames: the same frames
  from there on, so what moves is the model's reading of where the clip begins);
- level: a quieter or hotter microphone, a speaker farther away. Each clip scaled to peak at
  -6 dBFS, then 0, -10, -20 and -30 dB from there (no clipping).
Each clip (every corpus, clips spread over its manifest) is analysed whole (`emolive.analyze`, the
whole-recording estimate). Per clip and perturbation, the spread (largest less smallest estimate)
of each dimension; the table gives its median, 95th percentile and largest over clips, on the 1-7
scale, for each model, in one run: the shipped student and, as the reference, the shipped teacher
(Whisper's encoder, whose own frames and level handling are not the front end's).
Run: .venv/bin/python benchmarks/invariance.py [--per-corpus 5] [--models student teacher] [--perturbations ...]
"""
from __future__ import annotations

import argparse
import csv
from collections.abc import Callable

from _common import SHARED, print_table  # first: it sets one thread for every library

import numpy as np
import soundfile as sf

import emolive
from emolive.engine.schema import DIMENSIONS

CORPORA = ("emodb", "ravdess", "ased", "baved")
HOP = 320  # the front end's frame shift in samples
PEAK = 10 ** (-6 / 20)  # every level is counted from the clip peaking at -6 dBFS
# perturbation -> the variants of a clip it makes
PERTURBATIONS: dict[str, Callable[[np.ndarray], list[np.ndarray]]] = {
    "delay 0-19 ms": lambda x: [np.concatenate([np.zeros(shift, np.float32), x]) for shift in range(0, HOP, 16)],
    "cut 0-100 ms": lambda x: [x[ms * 16:] for ms in range(0, 101, 20)],
    "level 0 to -30 dB": lambda x: [(x * (PEAK / np.abs(x).max()) * 10 ** (-db / 20)).astype(np.float32)
                                    for db in (0, 10, 20, 30)],
}


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


def spreads(plugin: emolive.ModelPlugin, audio: list[np.ndarray], variants: Callable) -> np.ndarray:
    """[clips, dimensions]: each clip's largest less smallest whole-clip estimate over its variants."""
    out = []
    for samples in audio:
        wholes = [emolive.analyze(v, sample_rate=16000, model=plugin).whole for v in variants(samples)]
        values = np.array([[w[name] for name in DIMENSIONS] for w in wholes])
        out.append(values.max(0) - values.min(0))
    return np.array(out)


def cells(spread: np.ndarray) -> list[str]:
    """'median / p95 / max' of each dimension's spreads."""
    return [" / ".join(f"{v:.3f}" for v in (np.median(s), np.percentile(s, 95), s.max())) for s in spread.T]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-corpus", type=int, default=5)
    ap.add_argument("--models", nargs="+", default=["student", "teacher"], help="model names or bundle folders")
    ap.add_argument("--perturbations", nargs="+", choices=list(PERTURBATIONS), default=list(PERTURBATIONS))
    args = ap.parse_args()
    audio = clips(args.per_corpus)
    rows = []
    for model in args.models:
        plugin = emolive.load_model(model)
        rows += [[name, model, len(audio), *cells(spreads(plugin, audio, variants))]
                 for name, variants in PERTURBATIONS.items() if name in args.perturbations]
    print("spread of the whole-clip estimate over each perturbation's variants, median / p95 / max over clips, "
          "1-7 scale")
    print_table(["perturbation", "model", "clips", *DIMENSIONS], sorted(rows, key=lambda row: row[0]))


if __name__ == "__main__":
    main()
