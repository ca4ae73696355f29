"""What a smaller student buys in speed and costs in quality, side by side with the shipped one, in one run.

Issue 25's 1000x end to end is bounded by the model (over half of an analysis: two GRU layers of
128 over every 3 s window every 0.5 s). A narrower GRU (`trainer distill --hidden N`, the shipped
recipe otherwise: `make default-model`'s options) is the cheapest other model to try. For each
bundle given, beside the shipped student: `emolive.analyze` of 240 s of RAVDESS speech on one
thread, x real time (best of three, the models interleaved so load moves them alike), and CCC per
dimension and class UAR on the shipped student's held-out test speakers under each session
protocol (`trainer evaluate --split test --protocol P`), the worst protocol as the headline.
Run: .venv/bin/python benchmarks/student_size.py BUNDLE... (e.g. out/hidden-64 out/hidden-48)
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import REPO, SHARED, corpus_speech, print_table  # first: it sets one thread for every library

import emolive
from emolive.plugins.student.plugin import DEFAULT_BUNDLE

CORPORA = ("emodb", "ravdess", "ased", "baved")
PROTOCOLS = ("clip", "sustained", "mixed")
SECONDS = 240.0


def speeds(models: dict[str, emolive.ModelPlugin], repeats: int = 3) -> dict[str, float]:
    """x real time of `emolive.analyze` per model, best of `repeats`, interleaved."""
    speech = corpus_speech("ravdess", SECONDS)
    for plugin in models.values():  # first calls allocate
        emolive.analyze(speech[:80000], sample_rate=16000, model=plugin)
    best = dict.fromkeys(models, float("inf"))
    for _ in range(repeats):
        for name, plugin in models.items():
            started = time.perf_counter()
            emolive.analyze(speech, sample_rate=16000, model=plugin)
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: SECONDS / took for name, took in best.items()}


def quality(bundle: Path, protocol: str) -> list[float]:
    """[act, val, dom CCC, UAR] on the shipped student's test speakers under `protocol`."""
    data = [arg for corpus in CORPORA for arg in ("--data", str(SHARED / "corpora" / corpus / "manifest.csv"))]
    run = subprocess.run([str(Path(sys.executable).parent / "trainer"), "evaluate", "--model", str(bundle), *data,
                          "--splits", str(DEFAULT_BUNDLE / "splits.csv"), "--split", "test", "--protocol", protocol,
                          "--json"], cwd=REPO, capture_output=True, text=True, check=True)
    result = json.loads(run.stdout)
    return [result["ccc"][d] for d in ("activation", "valence", "dominance")] + [result["uar"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+", type=Path, help="student bundles to set beside the shipped one")
    args = parser.parse_args()
    bundles = {"shipped student": DEFAULT_BUNDLE, **{str(b): b for b in args.bundles}}
    models = {name: emolive.load_model(str(path)) for name, path in bundles.items()}
    speed = speeds(models)
    rows = []
    for name, path in bundles.items():
        scores = {protocol: quality(path, protocol) for protocol in PROTOCOLS}
        worst = [min(scores[p][i] for p in PROTOCOLS) for i in range(4)]
        hidden = models[name].meta.hyperparameters["hidden"]
        for protocol in (*PROTOCOLS, "worst"):
            values = worst if protocol == "worst" else scores[protocol]
            rows.append([name, hidden, f"{speed[name]:.0f}x ({speed[name] / speed['shipped student']:.2f})",
                         protocol, *(f"{v:.3f}" for v in values)])
    print_table(["model", "GRU width", "analyze x real time (x shipped)", "protocol", "act", "val", "dom", "UAR"],
                rows)


if __name__ == "__main__":
    main()
