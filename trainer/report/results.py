"""What a report holds, as plain data: filled by trainer.report.build, read by the writers."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emolive.trainer.data import Utterance

POOLED = "all"
"""The data-group name of every source together (what `trainer evaluate` with all --data gives)."""


@dataclass(frozen=True)
class Source:
    """One --data manifest or --msp-podcast root, after the split selection."""

    name: str  # short column name, e.g. the corpus folder "emodb"
    spec: str  # the path as given on the command line
    utts: list[Utterance]


@dataclass
class ModelResult:
    """One model's identity, predictions and scores on the report's utterances."""

    spec: str  # as given to --model
    label: str  # short unique name for tables and panels
    name: str
    path: Path | None
    architecture: str
    class_names: tuple[str, ...]
    size_bytes: int
    trained_on: list[str]
    training: str  # e.g. "kept epoch 20 of epochs 0-59"; empty when the bundle does not say
    predictions: dict[str, np.ndarray]  # trainer.evaluate.predict_utterances on every utterance
    scores: dict[str, dict] = field(default_factory=dict)  # data group -> trainer.evaluate.metrics
    coords: np.ndarray | None = None  # [N, 2] map of the embeddings
    rmse: np.ndarray | None = None  # [3 dims, intervals]
    confusion: np.ndarray | None = None  # [true classes present, classes]
    confusion_rows: list[str] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)  # kind -> file name


@dataclass
class Report:
    command: str
    sources: list[Source]
    split: str | None
    splits_csv: str | None
    method: str
    models: list[ModelResult]
    interval_counts: np.ndarray  # [3 dims, intervals] utterances per true-label interval
    protocol: str  # how clips formed sessions (trainer.sessions.PROTOCOLS)
    figures: dict[str, str] = field(default_factory=dict)  # kind -> file name (all-model figures)
    seconds: float = 0.0

    @property
    def utterances(self) -> list[Utterance]:
        return [u for s in self.sources for u in s.utts]

    def groups(self) -> list[str]:
        """Table column groups: each source with utterances, then all pooled when there are several."""
        names = [s.name for s in self.sources if s.utts]
        return names + [POOLED] if len(names) > 1 else names
