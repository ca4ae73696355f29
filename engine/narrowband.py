"""The warning for audio recorded below 16 kHz: said once per stream or batch, fitted to the model.

A telephone recording resampled to 16 kHz holds nothing above its own Nyquist band, where the
front-end students were measured to lose most of their valence and dominance (docs/results.md,
"Through other channels"); the pretrained-embedding teacher holds up better, so only a student's
warning points to it.
"""
from __future__ import annotations

from emolive.engine.plugin import ModelPlugin
from emolive.engine.sources.base import SAMPLE_RATE


def narrowband_note(what: str, rate: float | None, model: ModelPlugin) -> str | None:
    """The warning for `what` recorded at `rate` Hz and heard by `model`; None at 16 kHz or above
    (or an unknown rate: a source that delivers 16 kHz itself)."""
    if rate is None or rate >= SAMPLE_RATE:
        return None
    note = (f"{what}: {rate:g} Hz audio holds nothing above {rate / 2:g} Hz; model {model.name} learnt from "
            f"16 kHz speech")
    if "streams" in model.meta.hyperparameters:  # pretrained-encoder embeddings: the robust kind
        return note
    return (f"{note}, and a front-end model's valence and dominance suffer most on such audio "
            "(docs/results.md, 'Through other channels'): --model teacher holds up better")
