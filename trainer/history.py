"""What a training run leaves beside its bundle for people: per-epoch history and the versions used."""
from __future__ import annotations

import csv
import platform
import subprocess
from pathlib import Path

from emolive.engine.bundle import bundle_member
from emolive.engine.plugin import ModelPlugin
from emolive.engine.schema import DIMENSIONS

HISTORY_FILE = "history.csv"
SPLITS_FILE = "splits.csv"  # speaker,split: which speakers the model learned from


def bundle_splits(plugin: ModelPlugin) -> Path | None:
    """The speaker split a model was trained with (its bundle's splits.csv), if it has one."""
    path = getattr(plugin, "path", None)
    return bundle_member(Path(path) / SPLITS_FILE) if path else None


def write_history(path: Path, history: list[dict]) -> None:
    """One row per epoch: training loss, validation CCC per dimension and their mean."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "train_loss", *(f"val_ccc_{d}" for d in DIMENSIONS), "val_mean_ccc"])
        for h in history:
            writer.writerow([h["epoch"], f"{h.get('train_loss', float('nan')):.6f}",
                             *(f"{v:.6f}" for v in h["val_ccc"]), f"{h['val_mean_ccc']:.6f}"])


def versions() -> dict[str, str]:
    """emolive's commit (with '+dirty' for uncommitted changes), torch, numpy and Python."""
    import numpy
    import torch

    repo = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        commit, dirty = "unknown", ""
    return {"emolive_commit": commit + ("+dirty" if dirty else ""), "torch": torch.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}
