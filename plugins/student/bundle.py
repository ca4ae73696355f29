"""Student models to and from bundles: the engine's format plus this plugin's torch modules.

`engine.bundle` validates files and fields, `spec.py` what only the architecture knows (bounded
hyperparameters, that they fit the front end and class list, every tensor's shape); this module
turns checked tensors into a module and back. Writing a bundle also writes its runtime graph
(model.onnx, graph.py), so every bundle trainer writes runs on the light engine.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from emolive.engine.bundle import GRAPH_FILE, Bundle, BundleError, BundleMeta, read_bundle, write_bundle
from emolive.engine.features.config import FrontEndConfig
from emolive.engine.features.normalise import StreamNormConfig
from emolive.plugins.student.graph import export_graph
from emolive.plugins.student.model import ARCHITECTURES, StudentModel
from emolive.plugins.student.spec import student_shapes


def save_bundle(
    path: str | Path,
    model: StudentModel,
    frontend: FrontEndConfig,
    class_names: Sequence[str] = (),
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    int8: bool = False,
    stream_normalisation: StreamNormConfig | None = None,
    finish: Callable[[Path], None] | None = None,
) -> Path:
    """Write `model` (with its normalisation buffers) as a bundle directory, runtime graph included.

    Atomic (engine.bundle.write_bundle): the graph, and whatever `finish(directory)` adds, are
    written before the bundle appears at `path`."""
    meta = replace(model_meta(model, frontend, class_names, training, metrics), stream_normalisation=stream_normalisation)
    student_shapes(meta, Path(path))

    def complete(directory: Path) -> None:
        write_graph(directory)
        if finish is not None:
            finish(directory)

    return write_bundle(path, meta, numpy_state(model), int8=int8, finish=complete)


def write_graph(path: str | Path) -> Path:
    """(Re)write a student bundle's model.onnx from its weights, as read back (int8 bundles: dequantised)."""
    bundle = read_bundle(path, student_shapes)  # refuses linked members, as every read does
    return export_bundle_graph(Path(path), bundle, bundle.meta.architecture, bundle.meta.hyperparameters)


def export_bundle_graph(path: Path, bundle: Bundle, arch: str, hyperparameters: dict[str, Any]) -> Path:
    """Write the model.onnx of a read bundle whose network is `arch` with `hyperparameters` (a
    student's own, or a teacher's head: teacher.bundle.write_teacher_graph)."""
    if (path / GRAPH_FILE).is_symlink():
        raise BundleError(f"{path / GRAPH_FILE}: a symbolic link; a bundle holds plain files only (remove it, "
                          "then export again)")
    model = build_model(arch, hyperparameters, bundle.tensors)
    return export_graph(model, path / GRAPH_FILE, bundle.weights_sha256)


def numpy_state(model: StudentModel) -> dict[str, np.ndarray]:
    """The module's state_dict as the numpy arrays the engine writes."""
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def model_meta(
    model: StudentModel,
    frontend: FrontEndConfig,
    class_names: Sequence[str],
    training: dict[str, Any] | None,
    metrics: dict[str, Any] | None,
    prefix: str = "",
    **extra_hyperparameters: Any,
) -> BundleMeta:
    """The config.json of a GRU/TCGRU network, for students and for teachers (prefix, streams)."""
    return BundleMeta(
        architecture=prefix + model.arch,
        hyperparameters={**model.hyperparameters(), **extra_hyperparameters},
        frontend=frontend,
        class_names=tuple(class_names),
        training=training or {},
        metrics=metrics or {},
    )


def load_bundle(path: str | Path) -> tuple[StudentModel, BundleMeta]:
    """Build the torch module a bundle describes, load its weights, and return it in eval mode."""
    bundle = read_bundle(path, student_shapes)
    return build_model(bundle.meta.architecture, bundle.meta.hyperparameters, bundle.tensors), bundle.meta


def build_model(arch: str, hyperparameters: dict[str, Any], tensors: Mapping[str, np.ndarray]) -> StudentModel:
    """The module of an architecture with its weights, in eval mode.

    `tensors` come from `read_bundle`, already checked against `spec.network_shapes` (so a mismatch
    here is a bug, and load_state_dict's strict check says where). Shared with the teacher's head.
    """
    model = ARCHITECTURES[arch](**hyperparameters)
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()})
    return model.eval()
