"""The student as an engine plugin: a GRU/TCGRU bundle run on the CPU with torch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from emolive.engine.bundle import WEIGHTS_FILE, BundleMeta
from emolive.engine.plugin import Prediction
from emolive.plugins.student.bundle import load_bundle
from emolive.plugins.student.model import StudentModel

DEFAULT_BUNDLE = Path(__file__).resolve().parent / "default"


class StudentPlugin:
    """Runs a student bundle; features in, A/V/D + class probabilities + embedding out."""

    device = "cpu"

    def __init__(self, model: StudentModel, meta: BundleMeta, name: str, path: Path | None = None):
        self.model, self.meta, self.name, self.path = model, meta, name, path

    def predict(self, features: np.ndarray, samples: np.ndarray) -> Prediction:
        return self.predict_batch([features], [samples])[0]

    @torch.inference_mode()
    def predict_batch(self, features: list[np.ndarray], samples: list[np.ndarray]) -> list[Prediction]:
        lengths = torch.tensor([len(f) for f in features])
        batch = torch.zeros(len(features), int(lengths.max()), self.model.input_dim)
        for i, f in enumerate(features):
            batch[i, : len(f)] = torch.from_numpy(f)
        out = self.model(batch, lengths)
        avd = out["avd"].numpy()
        probs = torch.softmax(out["logits"], dim=1).numpy()
        emb = out["embedding"].numpy()
        return [Prediction(avd[i], probs[i], emb[i]) for i in range(len(features))]

    def size_bytes(self) -> int:
        if self.path is None:
            return sum(p.numel() * 4 for p in self.model.state_dict().values())
        return (self.path / WEIGHTS_FILE).stat().st_size


def load_student(path: str | Path, name: str | None = None) -> StudentPlugin:
    """Entry point for bundle architectures "gru" and "tcgru"."""
    path = Path(path)
    model, meta = load_bundle(path)
    return StudentPlugin(model, meta, name or str(path), path)


def load_default() -> StudentPlugin:
    """The embedded default student (TCGRU + multi-task, trained on EmoDB + RAVDESS)."""
    if not (DEFAULT_BUNDLE / WEIGHTS_FILE).exists():
        raise FileNotFoundError(f"the default student bundle is missing from {DEFAULT_BUNDLE}; "
                                "rebuild it with `make default-model`")
    return load_student(DEFAULT_BUNDLE, name="student")
