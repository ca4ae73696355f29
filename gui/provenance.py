"""Where the running model comes from, in words: its training data, licence and held-out results.

Everything is read from the model's own bundle (config.json's `training` and `metrics`), so the
window shows what was recorded when the model was built, not what a README says about it.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from emolive.engine.bundle import BundleMeta
from emolive.engine.schema import printable

NO_LICENCE = "not recorded in the bundle; see the README's 'Licence of data and models'"


def provenance_text(name: str, meta: BundleMeta) -> str:
    """A few lines: model, architecture, training data, licence, then every recorded metric."""
    training = meta.training
    data = [_corpus(path) for path in meta.trained_on] or ["not recorded"]
    lines = [f"model: {printable(name, 120)}",
             f"architecture: {printable(meta.architecture, 60)}, {len(meta.class_names)} classes",
             f"training data: {', '.join(data)}",
             f"licence: {printable(str(training.get('licence', NO_LICENCE)), 200)}"]
    if "best_epoch" in training:
        lines.append(f"best epoch: {printable(str(training['best_epoch']), 20)}")
    lines += ["", "results recorded in the bundle:"]
    lines += [f"  {key}: {value}" for key, value in _flatten(meta.metrics)] or ["  none"]
    return "\n".join(lines)


def _corpus(path: Any) -> str:
    """'../shared/corpora/emodb/manifest.csv' -> 'emodb'; anything else as given."""
    parts = PurePath(str(path)).parts
    return printable(parts[-2] if len(parts) >= 2 and parts[-1].endswith(".csv") else str(path), 80)


def _flatten(metrics: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in metrics.items():
        name = f"{prefix}{printable(str(key), 40)}"
        if isinstance(value, Mapping):
            out += _flatten(value, f"{name} / ")
        else:
            out.append((name, f"{value:.3f}" if isinstance(value, float) else printable(str(value), 80)))
    return out
