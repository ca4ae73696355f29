"""Paper Table 4 with the shipped Whisper teacher, in corpus: the default student before and after
distillation, on the default model's held-out test speakers of the four shared corpora.

Why a second Table 4: leave-one-corpus-out (benchmarks/generalisation.py, docs/teachers.md) no
distillation beats the undistilled student; the paper distils and tests on one corpus
(MSP-Podcast). Here every student trains on `trainer train`'s default split of the four corpora
(speaker split seed 0), the split the shipped teacher was trained on, so no validation or test
speaker was heard by teacher or student. Students, each the default recipe (TrainConfig()):
- "no distillation": the default student's recipe (40 epochs);
- "control": the distillation schedule with lambda = 0: 20 epochs on whole utterances, then the
  crops, selected from epoch 20 (60 epochs): what the schedule does without a teacher;
- "distilled": the same schedule with eq. 5's weights (kappa 0.001 / lambda 1, then 1 / 0.01),
  the teacher `teacher` (`trainer distill --teacher teacher --epochs 60 --switch-epoch 20`);
- "distilled, views per session": the same, the student also hearing each speaker's clips through
  two augmented channels (`--views 2 --session-channels`), the teacher's targets from the clean clip.
Each is scored under the three session protocols (`trainer evaluate --split test --protocol P`);
cells are mean +- std over seeds; "worst" is the lowest mean per metric over the protocols.
Bundles (int8, like the shipped default's) are kept under --work, so a run resumes where it stopped.
Run: .venv/bin/python benchmarks/distill_in_corpus.py [--seeds 0 1 2] [--jobs 2]
"""
from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from _common import SHARED, cell, cpu_model

from emolive.engine.plugin import load_model
from emolive.engine.schema import DIMENSIONS
from emolive.trainer.config import TrainConfig
from emolive.trainer.distill import DistillConfig
from emolive.trainer.evaluate import metrics, predict_utterances
from emolive.trainer.pipeline import DEFAULT_CACHE, DataSpec, by_split, fit, save_model
from emolive.trainer.sessions import PROTOCOLS

DATA = DataSpec(data=tuple(str(SHARED / "corpora" / c / "manifest.csv") for c in ("emodb", "ravdess", "ased", "baved")))
SWITCH = 20
VIEWS = 2
STUDENTS = {  # name -> (epochs, distillation weights (None: plain training), augmented views per speaker session)
    "no distillation": (TrainConfig().epochs, None, 0),
    "control: the schedule, lambda = 0": (60, DistillConfig(switch_epoch=SWITCH, lambda_early=0.0, lambda_=0.0), 0),
    "distilled from the teacher": (60, DistillConfig(switch_epoch=SWITCH), 0),
    # the teacher's targets come from each clip as recorded; the student also hears it through its
    # speaker's channel (`--views 2 --session-channels`), so it learns to give the same through a
    # telephone or in noise (benchmarks/channels.py)
    "distilled from the teacher, views per session": (60, DistillConfig(switch_epoch=SWITCH), VIEWS),
}


def trained(name: str, seed: int, work: Path) -> Path:
    """The student's bundle, trained unless an earlier run left it."""
    out = work / name.split(":")[0].replace(",", "").replace(" ", "-") / f"seed{seed}"
    if not (out / "model.safetensors").exists():
        torch.set_num_threads(1)
        epochs, distill, views = STUDENTS[name]
        config = replace(TrainConfig(), seed=seed, epochs=epochs, use_views=views > 0, session_channels=views > 0)
        fitted = fit(replace(DATA, views=views), config, distill)
        # int8 weights, as the shipped default and `trainer train|distill --int8` have them
        save_model(fitted, out, int8=True, training={"best_epoch": fitted.result.best_epoch})
    return out


def scores(bundle: Path) -> dict[str, list[float]]:
    """Protocol -> act/val/dom CCC and UAR on the test speakers, as `trainer evaluate` scores them."""
    plugin = load_model(str(bundle))
    test = by_split(DATA.split_utterances(), "test")
    out = {}
    for protocol in PROTOCOLS:
        m = metrics(plugin, test, predict_utterances(plugin, test, DATA.cache_root(), progress=False, protocol=protocol))
        out[protocol] = [m["ccc"][d] for d in DIMENSIONS] + [m["uar"]]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=1, help="students trained in parallel (one thread each)")
    ap.add_argument("--work", type=Path, default=DEFAULT_CACHE.parent / "distill-in-corpus")
    ap.add_argument("--json", type=Path, default=None, help="also write every score here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    load_model("teacher")  # a missing teacher fails here, before any training
    tasks = [(name, seed) for name in STUDENTS for seed in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        bundles = list(pool.map(trained, *zip(*tasks), [args.work] * len(tasks)))
        measured = list(pool.map(scores, bundles))
    n_test = len(by_split(DATA.split_utterances(), "test"))
    print(f"Four shared corpora, the default split's test speakers ({n_test} clips), {len(args.seeds)} seeds, "
          f"{cpu_model()}\n")
    print("| student | protocol | act | val | dom | UAR |\n|---|---|---|---|---|---|")
    table = {}
    for name in STUDENTS:
        runs = [m for (n, _), m in zip(tasks, measured) if n == name]
        per_protocol = {p: np.array([r[p] for r in runs]) for p in PROTOCOLS}
        for protocol, values in per_protocol.items():
            cells = " | ".join(cell(column) for column in values.T)
            print(f"| {name} | {protocol} | {cells} |")
        worst = np.min([v.mean(0) for v in per_protocol.values()], axis=0)
        print(f"| **{name}** | **worst** | " + " | ".join(f"**{m:.3f}**" for m in worst) + " |")
        table[name] = {p: v.tolist() for p, v in per_protocol.items()}
    if args.json:
        args.json.write_text(json.dumps({"seeds": args.seeds, "cpu": cpu_model(), "scores": table}, indent=1) + "\n")


if __name__ == "__main__":
    main()
