"""Student models to and from bundles: the engine's format plus this plugin's architectures.

`engine.bundle` validates files and fields; this module adds what only the architecture knows:
which module to build, that its hyperparameters fit the front end and class list, and the shape
of every tensor.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from emolive.engine.bundle import BundleError, BundleMeta, check_tensors, read_bundle, write_bundle
from emolive.engine.features.config import FrontEndConfig
from emolive.engine.features.normalise import StreamNormConfig
from emolive.plugins.student.model import ARCHITECTURES, LABEL_HIGH, LABEL_LOW, StudentModel


def save_bundle(
    path: str | Path,
    model: StudentModel,
    frontend: FrontEndConfig,
    class_names: Sequence[str] = (),
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    int8: bool = False,
    stream_normalisation: StreamNormConfig | None = None,
) -> Path:
    """Write `model` (with its normalisation buffers) as a bundle directory."""
    meta = replace(model_meta(model, frontend, class_names, training, metrics),
                   stream_normalisation=stream_normalisation)
    _check_consistent(meta, path)
    return write_bundle(path, meta, model.state_dict(), int8=int8)


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
        label_scale=(LABEL_LOW, LABEL_HIGH),
        training=training or {},
        metrics=metrics or {},
    )


def load_bundle(path: str | Path) -> tuple[StudentModel, BundleMeta]:
    """Build the module a bundle describes, load its weights, and return it in eval mode."""
    meta, tensors = read_bundle(path)
    model = build_model(meta.architecture, meta.hyperparameters, tensors, path)
    _check_consistent(meta, path)
    return model, meta


def build_model(arch: str, hyperparameters: dict[str, Any], tensors: dict, path: str | Path) -> StudentModel:
    """The module of a bundle's architecture with its weights, in eval mode; every field checked.

    Shared with bundles that wrap a student network (the teacher's TCGRU on embeddings).
    """
    cls = ARCHITECTURES.get(arch)
    if cls is None:
        raise BundleError(f"{path}: unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    try:
        model = cls(**hyperparameters)
    except (TypeError, ValueError, RuntimeError) as err:
        raise BundleError(f"{path}: bad hyperparameters for {arch}: {err}") from err
    if model.hyperparameters() != hyperparameters:
        raise BundleError(f"{path}: hyperparameters must list exactly {sorted(model.hyperparameters())}")
    check_tensors(tensors, model.state_dict(), path)
    model.load_state_dict(tensors)
    return model.eval()


def _check_consistent(meta: BundleMeta, path: str | Path) -> None:
    """The student reads the front end's features and has one logit per class name."""
    hp = meta.hyperparameters
    if hp["input_dim"] != meta.frontend.num_features:
        raise BundleError(f"{path}: input_dim {hp['input_dim']} but the front end gives {meta.frontend.num_features} features")
    if hp["n_classes"] != len(meta.class_names):
        raise BundleError(f"{path}: n_classes {hp['n_classes']} but {len(meta.class_names)} class names")
    if meta.label_scale != (LABEL_LOW, LABEL_HIGH):
        raise BundleError(f"{path}: label_scale {list(meta.label_scale)}, the student outputs [{LABEL_LOW}, {LABEL_HIGH}]")
