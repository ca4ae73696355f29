"""The shape of the paper's Table 4 on the shared corpora: a TCGRU student before and after distillation.

Same speaker-independent split as benchmarks/results.py (EmoDB + RAVDESS pooled, speaker split
seed 0, val 0.1, test 0.2). The teacher is a wide TCGRU (hidden 256 by default, embedding 128)
on the same MFB+F0 features, trained once on the train split (seed 0) and used through its bundle,
as `trainer distill --teacher PATH` would. Students: the baseline (_common.TABLE_RECIPE: 60 epochs,
patience 10, one pass over the training set per epoch), the distilled student (the same for 100
epochs with DistillConfig's weights: kappa 0.001 / lambda 1 for 40 epochs, then 1 / 0.01,
selection from epoch 40), and a control with the same schedule but lambda = 0 (no teacher), which
separates the teacher's effect from that of the 40 extra, unselected epochs. Each student runs with
3 seeds; cells are test CCC mean +- std.
Run: .venv/bin/python benchmarks/distill.py [--seeds 0 1 2] [--teacher-hidden 256] [--jobs 2]
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from _common import SHARED, TABLE_RECIPE, cell

from emolive.engine.plugin import load_model
from emolive.trainer.distill import DistillConfig, setup_distillation
from emolive.trainer.pipeline import DEFAULT_CACHE, DataSpec, fit, featurise, save_model
from emolive.trainer.config import TrainConfig

DATA = DataSpec(data=tuple(str(SHARED / "corpora" / c / "manifest.csv") for c in ("emodb", "ravdess")),
                val_frac=0.1, test_frac=0.2)
STUDENTS = {  # name -> distillation weights (None: plain training)
    "TCGRU + MTL, no distillation": None,
    "TCGRU + MTL, same schedule, lambda = 0 (control)": DistillConfig(lambda_early=0.0, lambda_=0.0),
    "TCGRU + MTL, + distillation": DistillConfig(),
}


def teacher_score(hidden: int, out: Path) -> dict:
    """Train the teacher (unless an earlier run left its bundle) and score it on the test split."""
    if not (out / "model.safetensors").exists():
        fitted = fit(DATA, TrainConfig(hidden=hidden, seed=0, **TABLE_RECIPE))
        save_model(fitted, out, training={"best_epoch": fitted.result.best_epoch})
    from emolive.trainer.evaluate import metrics, predict_utterances

    plugin = load_model(str(out))
    test = [u for u in DATA.split_utterances() if u.split == "test"]
    scored = metrics(plugin, test, predict_utterances(plugin, test, DATA.cache_root(), progress=False))
    return {"ccc": [scored["ccc"][d] for d in ("activation", "valence", "dominance")], "n": scored["n"]}


def student(name: str, seed: int, teacher: str) -> dict:
    torch.set_num_threads(1)
    weights = STUDENTS[name]
    distill = None if weights is None else replace(weights, teacher=teacher)
    recipe = {**TABLE_RECIPE, "seed": seed} if distill is None else {**TABLE_RECIPE, "seed": seed, "epochs": 100}
    fitted = fit(DATA, TrainConfig(**recipe), distill)
    return {**fitted.tests["test"], "best_epoch": fitted.result.best_epoch}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--teacher-hidden", type=int, default=256)
    ap.add_argument("--jobs", type=int, default=1, help="students trained in parallel (one thread each)")
    ap.add_argument("--work", default=str(DEFAULT_CACHE.parent / "distill-benchmark"), help="teacher bundle goes here")
    ap.add_argument("--json", default=None, help="also write all scores to this file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    teacher = Path(args.work) / f"teacher-h{args.teacher_hidden}"
    reference = teacher_score(args.teacher_hidden, teacher)
    print(f"teacher: done ({teacher})", file=sys.stderr, flush=True)
    # the teacher targets once, before the students read them from the cache in parallel
    utts = DATA.split_utterances()
    train_set = featurise([u for u in utts if u.split == "train"], [], DATA.source(), progress=False)
    setup_distillation(DistillConfig(teacher=str(teacher)), train_set, TrainConfig(epochs=100), DATA.cache_root())
    tasks = [(name, seed) for name in STUDENTS for seed in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        scores = list(pool.map(student, *zip(*tasks), [str(teacher)] * len(tasks)))
    rows = {name: [s for (n, _), s in zip(tasks, scores) if n == name] for name in STUDENTS}

    n_test = reference["n"]
    print(f"**EmoDB + RAVDESS, speaker-independent test split ({n_test} clips), test CCC, "
          f"students: {len(args.seeds)} seeds**\n")
    print("| system | act | val | dom | best epoch |\n|---|---|---|---|---|")
    t = reference["ccc"]
    print(f"| teacher: TCGRU + MTL, hidden {args.teacher_hidden} (seed 0) | {t[0]:.3f} | {t[1]:.3f} | {t[2]:.3f} | - |")
    for name, runs in rows.items():
        ccc = np.array([r["ccc"] for r in runs])
        epochs = ", ".join(str(r["best_epoch"]) for r in runs)
        print(f"| {name} | {cell(ccc[:, 0])} | {cell(ccc[:, 1])} | {cell(ccc[:, 2])} | {epochs} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"teacher": reference, **rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
