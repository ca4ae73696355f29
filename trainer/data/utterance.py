"""The one record every dataset adapter produces, so the rest of the trainer is corpus-blind."""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable

from emolive.trainer.errors import TrainerError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Utterance:
    """One labelled clip. Dimensional targets are on MSP-Podcast's 1-7 scale; NaN where unlabelled.

    `speaker` is namespaced by corpus ("ravdess/01") so speaker-independent splits stay correct
    when corpora are pooled; `split` is None until a split is assigned.
    """

    path: Path
    speaker: str
    emotion: str
    intensity: str
    activation: float
    valence: float
    dominance: float
    split: str | None = None

    @property
    def corpus(self) -> str:
        """The corpus part of the namespaced speaker id."""
        return self.speaker.split("/", 1)[0]

    @property
    def avd(self) -> tuple[float, float, float]:
        """Targets in the model's output order."""
        return (self.activation, self.valence, self.dominance)


def without_duplicates(rows: Iterable[tuple[str, Utterance]]) -> list[Utterance]:
    """The utterances with each audio file once; `rows` pairs each with where it was read ("file:line").

    A file listed again with the same labels is a copy (a concatenated or twice-given table, a path
    spelled otherwise: relative, absolute, through a link): it is dropped with one warning, since
    counting a clip twice silently weights it double. A file listed again with other labels, speaker
    or split cannot be resolved by guessing: that is an error naming both places.
    """
    first: dict[str, tuple[str, Utterance]] = {}
    kept, dropped = [], []
    for where, u in rows:
        key = os.path.realpath(u.path)
        if key not in first:
            first[key] = (where, u)
            kept.append(u)
        elif same_labels(first[key][1], u):
            dropped.append((where, first[key][0]))
        else:
            raise TrainerError(f"{where}: {str(u.path)!r} is listed again with other labels, speaker or split (first at "
                               f"{first[key][0]}); keep one row per audio file")
    if dropped:
        log.warning("dropped %d duplicate row(s) listing an audio file again with the same labels (the first: %s, "
                    "a copy of %s)", len(dropped), *dropped[0])
    return kept


def same_labels(a: Utterance, b: Utterance, ignore: tuple[str, ...] = ("path",)) -> bool:
    """Equal records but for the fields in `ignore` (by default how their paths are spelled), NaN
    (unlabelled) equal to NaN."""
    return all(_equal(getattr(a, f.name), getattr(b, f.name)) for f in fields(Utterance) if f.name not in ignore)


def _equal(x: object, y: object) -> bool:
    return x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
