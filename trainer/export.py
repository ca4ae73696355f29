"""ONNX export of a student model with dynamic batch and time axes."""
from __future__ import annotations

from pathlib import Path

import torch

from emolive.plugins.student import StudentModel


class _Exportable(torch.nn.Module):
    """The model on full-length inputs (no lengths argument), returning a fixed output tuple."""

    def __init__(self, model: StudentModel):
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor):
        out = self.model(features)
        return out["avd"], out["logits"], out["embedding"]


def export_onnx(model: StudentModel, path: str | Path, opset: int = 17) -> Path:
    path = Path(path)
    example = torch.zeros(1, 150, model.input_dim)
    torch.onnx.export(
        _Exportable(model.eval()), (example,), str(path), dynamo=False, opset_version=opset,
        input_names=["features"], output_names=["avd", "logits", "embedding"],
        dynamic_axes={"features": {0: "batch", 1: "time"}, "avd": {0: "batch"},
                      "logits": {0: "batch"}, "embedding": {0: "batch"}},
    )
    return path
