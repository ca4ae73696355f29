"""The one record every dataset adapter produces, so the rest of the trainer is corpus-blind."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
