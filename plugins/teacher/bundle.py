"""Teacher bundles: a student network (GRU/TCGRU) trained on SSL embeddings, plus which embeddings.

The bundle format is the engine's; the architecture is `teacher-<arch>` (`teacher-tcgru` in the
paper's Table 3) and the hyperparameters hold the network's own fields plus `streams`: the
pretrained models and layers, in fusion order, whose concatenated frames the network reads.
The pretrained weights themselves stay outside the bundle (hub cache or checkpoint).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from emolive.engine.bundle import BundleError, BundleMeta, read_bundle, write_bundle
from emolive.engine.features.config import FrontEndConfig
from emolive.plugins.student import StudentModel, build_model
from emolive.plugins.student.bundle import model_meta
from emolive.plugins.teacher.pretrained import Stream, stream_from_dict

PREFIX = "teacher-"


def save_teacher_bundle(
    path: str | Path,
    model: StudentModel,
    streams: Sequence[Stream],
    class_names: Sequence[str] = (),
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    int8: bool = False,
) -> Path:
    """Write `model` (trained on the fused `streams`) as a teacher bundle directory."""
    # The engine still runs its front end and hands over each window's samples; the
    # front-end config records the sample rate and 20 ms framing the embeddings share.
    meta = model_meta(model, FrontEndConfig(), class_names, training, metrics, prefix=PREFIX,
                      streams=[s.to_dict() for s in streams])
    _check_consistent(model, list(streams), meta, path)
    return write_bundle(path, meta, model.state_dict(), int8=int8)


def load_teacher_bundle(path: str | Path) -> tuple[StudentModel, BundleMeta, list[Stream]]:
    """The network (eval mode), the bundle's metadata and the streams it needs, all checked."""
    meta, tensors = read_bundle(path)
    if not meta.architecture.startswith(PREFIX):
        raise BundleError(f"{path}: architecture {meta.architecture!r} is not a teacher ({PREFIX}...)")
    hyper = dict(meta.hyperparameters)
    try:
        streams = [stream_from_dict(s) for s in hyper.pop("streams")]
    except (KeyError, TypeError, ValueError) as err:
        raise BundleError(f"{path}: hyperparameters need 'streams': [{{model, layer, checkpoint}}, ...] ({err})") from err
    model = build_model(meta.architecture[len(PREFIX):], hyper, tensors, path)
    _check_consistent(model, streams, meta, path)
    return model, meta, streams


def _check_consistent(model: StudentModel, streams: list[Stream], meta: BundleMeta, path: str | Path) -> None:
    """The network reads exactly the fused streams' width and has one logit per class name."""
    if not streams:
        raise BundleError(f"{path}: a teacher needs at least one embedding stream")
    width = sum(s.spec.dim for s in streams)
    if model.input_dim != width:
        raise BundleError(f"{path}: input_dim {model.input_dim} but the streams "
                          f"{', '.join(s.label() for s in streams)} give {width} dimensions")
    if model.n_classes != len(meta.class_names):
        raise BundleError(f"{path}: n_classes {model.n_classes} but {len(meta.class_names)} class names")
