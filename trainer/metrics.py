"""Evaluation metrics on whole sets: CCC per dimension (the loss's own definition) and UAR."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from emolive.engine.schema import DIMENSIONS  # noqa: F401 (re-exported for the trainer)
from emolive.trainer.losses import ccc as ccc_tensor



def ccc(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Concordance correlation coefficient per column (paper eq. 2) over a whole set.

    Unlabelled (NaN) targets are left out of their column; a column with fewer than two labelled
    rows, or whose labels are all equal (CCC is then 0 whatever the model does), is NaN: "not
    measurable on this data", never a score.
    """
    target = np.asarray(target, dtype=np.float64)
    out = ccc_tensor(torch.as_tensor(pred, dtype=torch.float64), torch.as_tensor(target), eps=1e-12).numpy()
    for k in range(target.shape[1]):
        labelled = target[~np.isnan(target[:, k]), k]
        if len(labelled) < 2 or np.ptp(labelled) == 0:
            out[k] = np.nan
    return out


def ccc_text(values: Sequence[float | None]) -> str:
    """CCCs for a line of text, 3 decimals each; one `ccc` cannot measure is "-", as `trainer evaluate`
    shows it (the training summary had printed "nan")."""
    return " ".join("-" if v is None or not np.isfinite(v) else f"{v:.3f}" for v in values)


def uar(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean of per-class recalls over the classes present in `target` (chance = 1 / classes)."""
    classes = np.unique(target)
    if len(classes) == 0:
        return float("nan")
    return float(np.mean([(pred[target == c] == c).mean() for c in classes]))


MAX_UNMEASURED = 0.05  # the share of a bootstrap's draws a score may be unmeasurable in and keep its interval


def speaker_bootstrap(metric: Callable[[np.ndarray], np.ndarray], speakers: Sequence[str], draws: int = 500,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """95 % interval (2.5 and 97.5 percentiles) of `metric(rows)` over resamples of whole speakers.

    Clips of one speaker are not independent (one voice, one room), so the interval resamples
    speakers with replacement and takes all clips of each drawn speaker: it says how much a
    score would move on another set of speakers like these. `metric` maps row indices (with
    repeats) to a vector of scores, NaN where a draw cannot measure it. A score unmeasurable in more
    than MAX_UNMEASURED of the draws has no interval (NaN): two speakers of one emotion each left only
    the draws of both, reshuffles of the whole set, and the interval had closed on the point estimate.
    """
    speakers = np.asarray(speakers)
    names, inverse = np.unique(speakers, return_inverse=True)
    rows_of = [np.flatnonzero(inverse == k) for k in range(len(names))]
    rng = np.random.default_rng(seed)
    samples = np.array([metric(np.concatenate([rows_of[k] for k in rng.integers(0, len(names), len(names))]))
                        for _ in range(draws)], dtype=np.float64)
    flat = samples.reshape(draws, -1)
    low, high = np.full((2, flat.shape[1]), np.nan)
    measured = np.isfinite(flat).mean(axis=0) >= 1.0 - MAX_UNMEASURED  # an unlabelled dimension: none, no warning
    if measured.any():
        low[measured], high[measured] = np.nanpercentile(flat[:, measured], [2.5, 97.5], axis=0)
    return low.reshape(samples.shape[1:]), high.reshape(samples.shape[1:])
