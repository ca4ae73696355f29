"""What the running normaliser does to a sustained state: a 5-minute single-emotion stream per category.

For each category, clips of that category from the default student's own held-out test speakers
(its splits.csv; the model never trained on them) of one corpus are streamed back to back (0.3 s
of silence between clips), repeated until the stream is 5 minutes long, through `emolive.analyze`
(the live path: the running normaliser starts from its prior and follows the stream). Printed:
the mean activation and valence of the speech windows in the first 20 s and the last 60 s, and
the drift between them; a model without a running normaliser (the teacher, with --teacher) hears
every repetition alike and is the reference. The figure (docs/sustained.png) shows the estimates
over time. The mean training target of the clips (lexicon points, moved by intensity) is printed beside them.
Run: .venv/bin/python benchmarks/sustained_stream.py [--minutes 5] [--corpus ravdess] [--teacher]
"""
from __future__ import annotations

import argparse
import csv

from _common import REPO, SHARED, print_table  # first: one thread for every library

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import emolive  # noqa: E402
from emolive.plugins.student import DEFAULT_BUNDLE  # noqa: E402
from emolive.trainer.data import read_manifest  # noqa: E402
from emolive.trainer.data.cache import load_audio, read_audio_bytes  # noqa: E402

GAP_S = 0.3
CATEGORIES = ("angry", "happy", "neutral", "sad", "fear", "disgust")


def test_speakers() -> set[str]:
    with open(DEFAULT_BUNDLE / "splits.csv", newline="") as f:
        return {row["speaker"] for row in csv.DictReader(f) if row["split"] == "test"}


def sustained_audio(corpus: str, category: str, minutes: float) -> tuple[np.ndarray, tuple[float, ...]] | None:
    """One category's test-speaker clips back to back, repeated to `minutes`; and their mean target."""
    speakers = test_speakers()
    clips = [u for u in read_manifest(SHARED / "corpora" / corpus / "manifest.csv")
             if u.emotion == category and u.speaker in speakers]
    if not clips:
        return None
    gap = np.zeros(int(GAP_S * 16000), np.float32)
    once = np.concatenate([part for u in clips for part in (load_audio(read_audio_bytes(u.path)), gap)])
    reps = int(np.ceil(minutes * 60 * 16000 / len(once)))
    return np.tile(once, reps)[: int(minutes * 60 * 16000)], tuple(np.mean([u.avd for u in clips], axis=0))


def spans(windows: list[dict], dim: str, start: float, end: float) -> float:
    values = [w[dim] for w in windows if w["speech"] and start <= w["end"] <= end]
    return float(np.mean(values)) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--corpus", default="ravdess")
    ap.add_argument("--teacher", action="store_true", help="also run the teacher (no running normaliser)")
    ap.add_argument("--figure", default=str(REPO / "docs" / "sustained.png"))
    args = ap.parse_args()
    models = {"student": emolive.load_model("student")}
    if args.teacher:
        models["teacher"] = emolive.load_model("teacher")
    total = args.minutes * 60
    rows, traces = [], {}
    for category in CATEGORIES:
        made = sustained_audio(args.corpus, category, args.minutes)
        if made is None:
            continue
        audio, target = made
        for name, model in models.items():
            windows = emolive.analyze(audio, sample_rate=16000, model=model).windows
            traces[(category, name)] = windows
            cells = []
            for dim in ("activation", "valence"):
                first, last = spans(windows, dim, 0, 20), spans(windows, dim, total - 60, total)
                cells += [f"{first:.2f}", f"{last:.2f}", f"{last - first:+.2f}"]
            rows.append([category, name, f"{target[0]:.2f} / {target[1]:.2f}", *cells])
    print(f"{args.minutes:g}-minute single-emotion streams of {args.corpus}'s held-out test speakers "
          "(speech windows; first 20 s, last 60 s)")
    print_table(["category", "model", "target act / val", "act first", "act last", "drift", "val first", "val last",
                 "drift"], rows)
    fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for (category, name), windows in traces.items():
        t = [w["end"] for w in windows]
        style = "-" if name == "student" else ":"
        for ax, dim in zip(axes, ("activation", "valence")):
            ax.plot(t, [w[dim] for w in windows], style, label=f"{category} ({name})", linewidth=1)
    for ax, dim in zip(axes, ("activation", "valence")):
        ax.set_ylabel(dim)
        ax.set_ylim(1, 7)
    axes[1].set_xlabel("seconds into the stream")
    axes[0].legend(fontsize=7, ncol=3)
    fig.suptitle("One emotion sustained for minutes: the running normaliser drifts it towards neutral")
    fig.tight_layout()
    fig.savefig(args.figure, dpi=90)
    print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
