"""Does a student read a clip by its first frames? Training recipes side by side, from one run.

A student's GRU starts from zero at a window's first frame, and the shipped one learnt to lean on
that frame: 60 ms cut from an EmoDB clip's start moved its valence from 1.1 to 4.6, and a GRU
started earlier never forgot its start (benchmarks/window_reuse.py), which is also why windows
cannot share work (issue 25). Two training options aim at it (trainer.sampling): `--lead-in-s`
runs each crop after the end of another clip, which the pooling skips, and `--start-jitter-s`
starts a short clip up to that much late. For each recipe (one or more bundles: seeds), per
bundle and as the recipe's mean:
- quality as users meet it: CCC per dimension and class UAR on the shipped student's held-out test
  speakers under the worst of the clip, sustained and mixed protocols (benchmarks/student_size.py);
- cut: the spread of each clip's whole-clip estimate over 0-100 ms cut from its start, median /
  p95 over clips of every corpus (benchmarks/invariance.py);
- forgetting: each window of 120 s of RAVDESS speech pooled from a GRU running since the stream
  began against its own zero-state GRU, median / p95 error (benchmarks/window_reuse.py): what
  windows sharing one GRU pass would cost.
Run: .venv/bin/python benchmarks/start_robustness.py --recipe NAME=BUNDLE[,BUNDLE...] ... [--per-corpus 25]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from _common import print_table  # first: it sets one thread for every library

import numpy as np

import emolive
from emolive.engine.schema import DIMENSIONS
from invariance import PERTURBATIONS, clips, spreads
from student_size import PROTOCOLS, quality
from window_reuse import VARIANTS, reuse_errors

CUT = "cut 0-100 ms"
STREAM = "stream start"  # window_reuse's variant of a GRU running since the stream began


def figures(bundle: Path, audio: list[np.ndarray], seconds: float) -> list[float]:
    """[worst-protocol act, val, dom CCC, UAR, cut spread median and p95 per dimension, reuse error
    median and p95 per dimension] of one bundle."""
    by_protocol = np.array([quality(bundle, protocol) for protocol in PROTOCOLS])
    cut = spreads(emolive.load_model(str(bundle)), audio, PERTURBATIONS[CUT])
    reuse = reuse_errors(bundle, seconds, [v for v in VARIANTS if v[0] == STREAM])[STREAM][0]
    return [*by_protocol.min(0), *(f(cut[:, d]) for d in range(3) for f in (np.median, p95)),
            *(f(reuse[:, d]) for d in range(3) for f in (np.median, p95))]


def p95(values: np.ndarray) -> float:
    return float(np.percentile(values, 95))


def row(name: str, values: list[float]) -> list[str]:
    """A table row: the four quality figures, then 'median / p95' pairs."""
    pairs = [f"{values[i]:.3f} / {values[i + 1]:.3f}" for i in range(4, len(values), 2)]
    return [name, *(f"{v:.3f}" for v in values[:4]), *pairs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", action="append", required=True, metavar="NAME=BUNDLE[,BUNDLE...]",
                    help="a recipe's bundles (one per seed); repeat for each recipe")
    ap.add_argument("--per-corpus", type=int, default=25, help="clips of each corpus for the cut")
    ap.add_argument("--seconds", type=float, default=120.0, help="speech for the forgetting measure")
    args = ap.parse_args()
    audio = clips(args.per_corpus)
    rows = []
    for recipe in args.recipe:
        name, _, paths = recipe.partition("=")
        results = [figures(Path(path).resolve(), audio, args.seconds) for path in paths.split(",")]
        rows += [row(f"{name} ({path})", values) for path, values in zip(paths.split(","), results)]
        rows.append(row(f"**{name}, mean of {len(results)}**", list(np.mean(results, 0))))
    print(f"worst protocol of {', '.join(PROTOCOLS)} (CCC, UAR); cut: spread over {CUT} on {len(audio)} clips; "
          f"stream: error of a window pooled from a GRU running since the stream began; 1-7 scale, median / p95")
    print_table(["bundle", "act", "val", "dom", "UAR", *(f"cut {d[:3]}" for d in DIMENSIONS),
                 *(f"stream {d[:3]}" for d in DIMENSIONS)], rows)


if __name__ == "__main__":
    main()
