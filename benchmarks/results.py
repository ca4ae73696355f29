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

from _common import SHARED

from emolive.trainer.data import FeatureCache, Utterance
from emolive.trainer.pipeline import DEFAULT_CACHE, by_split, class_names_of, ensure_splits, featurise, load_utterances
from emolive.trainer.train import TrainConfig, score, train

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


def experiment(key: str) -> tuple[list[Utterance], list[Utterance], list[Utterance]]:
    """(train, val, test) utterances of "pooled" or of a cross-corpus "SRC -> DST" key."""
    if key == "pooled":
        pooled = ensure_splits(load_utterances([manifest("emodb"), manifest("ravdess")]), 0, 0.1, 0.2)
        return tuple(by_split(pooled, s) for s in ("train", "val", "test"))
    src, dst = key.split(" -> ")
    own = ensure_splits(load_utterances([manifest(src)]), 0, 0.15, 0.0)
    return by_split(own, "train"), by_split(own, "val"), load_utterances([manifest(dst)])


def task(key: str, arch: str, multitask: bool, seed: int) -> dict:
    """One training run in its own process (one thread each: see benchmarks/_common)."""
    return run(*experiment(key), arch, multitask, seed, FeatureCache(DEFAULT_CACHE))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=2, help="training runs in parallel, one thread each")
    ap.add_argument("--json", default=None, help="also write all scores to this file")
    args = ap.parse_args()
    FeatureCache(DEFAULT_CACHE).features_for(sum(experiment("pooled"), []), progress=False)  # warm once
    jobs = [("pooled", name, arch, mtl) for name, arch, mtl in SYSTEMS]
    jobs += [(key, "TCGRU + MTL", "tcgru", True) for key in ("ravdess -> emodb", "emodb -> ravdess")]
    runs = [(key, name, arch, mtl, seed) for key, name, arch, mtl in jobs for seed in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        scores = list(pool.map(task, *zip(*[(k, a, m, s) for k, _, a, m, s in runs])))
    out: dict[str, dict[str, list[dict]]] = {}
    for (key, name, *_), result in zip(runs, scores):
        out.setdefault(key, {}).setdefault(name, []).append(result)
    test = experiment("pooled")[2]
    print(table(f"EmoDB + RAVDESS, speaker-independent test split ({len(test)} clips, "
                f"{len({u.speaker for u in test})} speakers), {len(args.seeds)} seeds", out["pooled"]))
    for key in ("ravdess -> emodb", "emodb -> ravdess"):
        print()
        print(table(f"Cross-corpus {key}, {len(args.seeds)} seeds", out[key]))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
