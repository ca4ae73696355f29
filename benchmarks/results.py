"""Reproduce the shape of the paper's Table 1 on the shared corpora, plus cross-corpus runs.

Speaker-independent: one fixed speaker split (seed 0) of EmoDB + RAVDESS pooled; each system is
trained with 3 initialisation seeds and scored on the held-out test speakers (mean +- std).
Cross-corpus: train on one corpus (its own speaker split for early stopping), test on all of the
other. Targets come from the category -> VAD map, so these are proxies of the paper's task.
Run: .venv/bin/python benchmarks/results.py [--seeds 0 1 2] [--jobs 2] [--json docs/results.json]
"""
from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from _common import SHARED, TABLE_RECIPE, cell

from emolive.trainer.config import TrainConfig
from emolive.trainer.pipeline import DataSpec, fit

SYSTEMS = [("GRU", "gru", False), ("GRU + MTL", "gru", True), ("TCGRU", "tcgru", False), ("TCGRU + MTL", "tcgru", True)]


def manifest(corpus: str) -> str:
    return str(SHARED / "corpora" / corpus / "manifest.csv")


def table(title: str, rows: dict[str, list[dict]]) -> str:
    lines = [f"**{title}**", "", "| system | act | val | dom | UAR |", "|---|---|---|---|---|"]
    for name, scores in rows.items():
        ccc = np.array([s["ccc"] for s in scores])
        uars = [s["uar"] for s in scores if s.get("uar") is not None]
        lines.append(f"| {name} | {cell(ccc[:, 0])} | {cell(ccc[:, 1])} | {cell(ccc[:, 2])} | "
                     f"{cell(uars) if uars else '-'} |")
    return "\n".join(lines)


def experiment(key: str) -> DataSpec:
    """The data of "pooled" or of a cross-corpus "SRC -> DST" key (DST all test)."""
    if key == "pooled":
        return DataSpec(data=(manifest("emodb"), manifest("ravdess")), val_frac=0.1, test_frac=0.2)
    src, dst = key.split(" -> ")
    return DataSpec(data=(manifest(src),), val_frac=0.15, test_frac=0.0, test_data=(manifest(dst),))


def task(key: str, arch: str, multitask: bool, seed: int) -> dict:
    """One training run in its own process (one thread each: see benchmarks/_common); its test scores."""
    return fit(experiment(key), TrainConfig(arch=arch, multitask=multitask, seed=seed, **TABLE_RECIPE)).tests["test"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=2, help="training runs in parallel, one thread each")
    ap.add_argument("--json", default=None, help="also write all scores to this file")
    args = ap.parse_args()
    pooled = experiment("pooled")
    pooled.source().features_for(pooled.utterances(), progress=False)  # warm once
    jobs = [("pooled", name, arch, mtl) for name, arch, mtl in SYSTEMS]
    jobs += [(key, "TCGRU + MTL", "tcgru", True) for key in ("ravdess -> emodb", "emodb -> ravdess")]
    runs = [(key, name, arch, mtl, seed) for key, name, arch, mtl in jobs for seed in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        scores = list(pool.map(task, *zip(*[(k, a, m, s) for k, _, a, m, s in runs])))
    out: dict[str, dict[str, list[dict]]] = {}
    for (key, name, *_), result in zip(runs, scores):
        out.setdefault(key, {}).setdefault(name, []).append(result)
    test = [u for u in pooled.split_utterances() if u.split == "test"]
    print(table(f"EmoDB + RAVDESS, speaker-independent test split ({len(test)} clips, "
                f"{len({u.speaker for u in test})} speakers), {len(args.seeds)} seeds", out["pooled"]))
    for key in ("ravdess -> emodb", "emodb -> ravdess"):
        print()
        print(table(f"Cross-corpus {key}, {len(args.seeds)} seeds", out[key]))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
