"""What the running normaliser does to a sustained state: a 5-minute single-emotion stream per category.

For each category, clips of that category from the default student's own held-out test speakers
(its splits.csv; the model never trained on them) of one corpus are streamed back to back (0.3 s
of silence between clips), repeated until the stream is 5 minutes long, through `emolive.analyze`
(the live path: the running normaliser starts from its prior and follows the stream). Printed:
the mean activation and valence of the speech windows over the first pass through the clips and
over the last complete pass (the same audio), and the drift between them: what the stream's
history alone did to the estimate. A model without a running normaliser (the teacher, with
--teacher) hears every pass alike and is the reference (its drift is ~0: only the windows'
alignment to the passes differs). The figure (docs/sustained.png) shows the estimates
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
from emolive.trainer.data.cache import read_audio  # noqa: E402

GAP_S = 0.3
CATEGORIES = ("angry", "happy", "neutral", "sad", "fear", "disgust")


def test_speakers() -> set[str]:
    with open(DEFAULT_BUNDLE / "splits.csv", newline="") as f:
        return {row["speaker"] for row in csv.DictReader(f) if row["split"] == "test"}


def sustained_audio(corpus: str, category: str, minutes: float) -> tuple[np.ndarray, float, tuple[float, ...]] | None:
    """One category's test-speaker clips back to back, repeated to `minutes`; the length of one pass
    (s); and the clips' mean target."""
    speakers = test_speakers()
    clips = [u for u in read_manifest(SHARED / "corpora" / corpus / "manifest.csv")
             if u.emotion == category and u.speaker in speakers]
    if not clips:
        return None
    gap = np.zeros(int(GAP_S * 16000), np.float32)
    once = np.concatenate([part for u in clips for part in (read_audio(u.path), gap)])
    reps = int(np.ceil(minutes * 60 * 16000 / len(once)))
    return (np.tile(once, reps)[: int(minutes * 60 * 16000)], len(once) / 16000,
            tuple(np.mean([u.avd for u in clips], axis=0)))


def spans(windows: list[dict], dim: str, start: float, end: float) -> float:
    """Mean of `dim` over the speech windows lying within [start, end] seconds."""
    values = [w[dim] for w in windows if w["speech"] and start <= w["start"] and w["end"] <= end]
    return float(np.mean(values)) if values else float("nan")


def smoothed(values: list[float], span: int = 40) -> np.ndarray:
    """Trailing mean over the last `span` values (40 speech windows: 20 s at the 0.5 s hop)."""
    sums = np.cumsum(np.concatenate([[0.0], values]))
    idx = np.arange(1, len(values) + 1)
    return (sums[idx] - sums[np.maximum(idx - span, 0)]) / np.minimum(idx, span)


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
        audio, once, target = made
        last = (int(total // once) - 1) * once  # the start of the last complete pass
        for name, model in models.items():
            windows = emolive.analyze(audio, sample_rate=16000, model=model).windows
            traces[(category, name)] = windows
            cells = []
            for dim in ("activation", "valence"):
                first, final = spans(windows, dim, 0, once), spans(windows, dim, last, last + once)
                cells += [f"{first:.2f}", f"{final:.2f}", f"{final - first:+.2f}"]
            rows.append([category, name, f"{once:.0f} s", f"{target[0]:.2f} / {target[1]:.2f}", *cells])
    print(f"{args.minutes:g}-minute single-emotion streams of {args.corpus}'s held-out test speakers "
          "(speech windows of the first and of the last complete pass through the same clips)")
    print_table(["category", "model", "one pass", "target act / val", "act first", "act last", "drift", "val first",
                 "val last", "drift"], rows)
    fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    colours = dict(zip(CATEGORIES, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for (category, name), windows in traces.items():
        speech = [w for w in windows if w["speech"]]
        t = [w["end"] for w in speech]
        style = "-" if name == "student" else ":"
        for ax, dim in zip(axes, ("activation", "valence")):
            ax.plot(t, smoothed([w[dim] for w in speech]), style, color=colours[category],
                    label=f"{category} ({name})", linewidth=1.5)
    for ax, dim in zip(axes, ("activation", "valence")):
        ax.set_ylabel(dim)
        ax.set_ylim(1, 7)
    axes[1].set_xlabel("seconds into the stream")
    axes[0].legend(fontsize=7, ncol=3)
    fig.suptitle("One emotion for 5 minutes (speech windows, 20 s running mean): student solid, teacher dotted")
    fig.tight_layout()
    fig.savefig(args.figure, dpi=90)
    print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
