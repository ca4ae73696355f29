"""The student run by torch: the head of the teacher plugin, and the reference the light path is measured against.

`emolive stream --model student-torch` selects it for the default bundle (benchmarks/light_engine.py
compares the two); the model logic is `model.py`'s, the same module the ONNX graph is exported from.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from emolive.engine.bundle import WEIGHTS_FILE, BundleMeta
from emolive.engine.plugin import Prediction
from emolive.plugins.student.bundle import load_bundle
from emolive.plugins.student.model import StudentModel
from emolive.plugins.student.plugin import DEFAULT_BUNDLE, pad_features


class TorchStudentPlugin:
    """Runs a StudentModel in torch on the CPU; features in, A/V/D + class probabilities + embedding out."""

    device = "cpu"
    reads_samples = False  # front-end features alone (engine.plugin.reads_samples)

    def __init__(self, model: StudentModel, meta: BundleMeta, name: str, path: Path | None = None):
        self.model, self.meta, self.name, self.path = model, meta, name, path

    def predict(self, features: np.ndarray, samples: np.ndarray) -> Prediction:
        return self.predict_batch([features], [samples])[0]

    @torch.inference_mode()
    def predict_batch(self, features: list[np.ndarray], samples: list[np.ndarray]) -> list[Prediction]:
        batch, lengths = pad_features(features, self.model.input_dim)
        out = self.model(torch.from_numpy(batch), torch.from_numpy(lengths))
        avd = out["avd"].numpy()
        probs = torch.softmax(out["logits"], dim=1).numpy()
        emb = out["embedding"].numpy()
        return [Prediction(avd[i], probs[i], emb[i]) for i in range(len(features))]

    def size_bytes(self) -> int:
        if self.path is None:
            return sum(p.numel() * 4 for p in self.model.state_dict().values())
        return (self.path / WEIGHTS_FILE).stat().st_size


def load_default_torch() -> TorchStudentPlugin:
    """The default student bundle run by torch."""
    model, meta = load_bundle(DEFAULT_BUNDLE)
    return TorchStudentPlugin(model, meta, "student-torch", DEFAULT_BUNDLE)
