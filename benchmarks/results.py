"""Reproduce the shape of the paper's Table 1 on the shared corpora, plus cross-corpus runs.

Speaker-independent: one fixed speaker split (seed 0) of EmoDB + RAVDESS pooled; each system is
trained with 3 initialisation seeds and scored on the held-out test speakers (mean +- std).
Cross-corpus: train on one corpus (its own speaker split for early stopping), test on all of the
other. Targets come from the category -> VAD map, so these are proxies of the paper's task.
Run: .venv/bin/python benchmarks/results.py [--seeds 0 1 2] [--json docs/results.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from _common import SHARED

from trainer.data import FeatureCache
from trainer.pipeline import DEFAULT_CACHE, by_split, class_names_of, ensure_splits, featurise, load_utterances
from trainer.train import TrainConfig, score, train

SYSTEMS = [("GRU", "gru", False), ("GRU + MTL", "gru", True), ("TCGRU", "tcgru", False), ("TCGRU + MTL", "tcgru", True)]


def manifest(corpus: str) -> str:
    return str(SHARED / "corpora" / corpus / "manifest.csv")


def run(train_utts, val_utts, test_utts, arch: str, multitask: bool, seed: int, cache: FeatureCache) -> dict:
    classes = class_names_of(train_utts)
    sets = [featurise(u, classes, cache, progress=False) for u in (train_utts, val_utts, test_utts)]
    result = train(sets[0], sets[1], classes, TrainConfig(arch=arch, multitask=multitask, seed=seed), log=lambda _: None)
    return score(result.model, sets[2])


def cell(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def table(title: str, rows: dict[str, list[dict]]) -> str:
    lines = [f"**{title}**", "", "| system | act | val | dom | UAR |", "|---|---|---|---|---|"]
    for name, scores in rows.items():
        ccc = np.array([s["ccc"] for s in scores])
        uars = [s["uar"] for s in scores if s.get("uar") is not None]
        lines.append(f"| {name} | {cell(ccc[:, 0])} | {cell(ccc[:, 1])} | {cell(ccc[:, 2])} | "
                     f"{cell(uars) if uars else '-'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--json", default=None, help="also write all scores to this file")
    args = ap.parse_args()
    cache = FeatureCache(DEFAULT_CACHE)
    out: dict[str, dict[str, list[dict]]] = {}

    pooled = ensure_splits(load_utterances([manifest("emodb"), manifest("ravdess")]), 0, 0.1, 0.2)
    parts = [by_split(pooled, s) for s in ("train", "val", "test")]
    out["pooled"] = {}
    for name, arch, mtl in SYSTEMS:
        out["pooled"][name] = [run(*parts, arch, mtl, seed, cache) for seed in args.seeds]
        print(f"{name}: done", file=sys.stderr, flush=True)

    for src, dst in (("ravdess", "emodb"), ("emodb", "ravdess")):
        own = ensure_splits(load_utterances([manifest(src)]), 0, 0.15, 0.0)
        other = load_utterances([manifest(dst)])
        key = f"{src} -> {dst}"
        out[key] = {"TCGRU + MTL": [run(by_split(own, "train"), by_split(own, "val"), other, "tcgru", True, seed, cache)
                                    for seed in args.seeds]}
        print(f"{key}: done", file=sys.stderr, flush=True)

    print(table(f"EmoDB + RAVDESS, speaker-independent test split ({len(parts[2])} clips, "
                f"{len({u.speaker for u in parts[2]})} speakers), {len(args.seeds)} seeds", out["pooled"]))
    for key in ("ravdess -> emodb", "emodb -> ravdess"):
        print()
        print(table(f"Cross-corpus {key}, {len(args.seeds)} seeds", out[key]))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
