"""Teacher bundles: a student network (GRU/TCGRU) trained on SSL embeddings, plus which embeddings.

The bundle format is the engine's; the architecture is `teacher-<arch>` (`teacher-tcgru` in the
paper's Table 3) and the hyperparameters hold the network's own fields plus `streams`: the
pretrained models and layers, in fusion order, whose concatenated frames the network reads.
The pretrained weights themselves stay outside the bundle (hub cache or checkpoint).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from emolive.engine.bundle import Bundle, BundleError, BundleMeta, Shapes, read_bundle, write_bundle
from emolive.engine.features.config import FrontEndConfig
from emolive.plugins.student.spec import checked_shapes
from emolive.plugins.teacher.pretrained import Stream, stream_from_dict

if TYPE_CHECKING:  # import-light: the live teacher reads its bundle without torch (read_teacher_bundle)
    from emolive.plugins.student import StudentModel

PREFIX = "teacher-"


def save_teacher_bundle(
    path: str | Path,
    model: StudentModel,
    streams: Sequence[Stream],
    class_names: Sequence[str] = (),
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    int8: bool = False,
    finish: Callable[[Path], None] | None = None,
) -> Path:
    """Write `model` (trained on the fused `streams`) as a teacher bundle directory (atomically, with
    what `finish(directory)` adds: engine.bundle.write_bundle)."""
    from emolive.plugins.student.bundle import model_meta, numpy_state

    # The engine still runs its front end and hands over each window's samples; the
    # front-end config records the sample rate and 20 ms framing the embeddings share.
    meta = model_meta(model, FrontEndConfig(), class_names, training, metrics, prefix=PREFIX,
                      streams=[s.to_dict() for s in streams])
    teacher_shapes(meta, Path(path))

    def complete(directory: Path) -> None:  # the head's runtime graph, so the teacher runs without torch
        write_teacher_graph(directory)
        if finish is not None:
            finish(directory)

    return write_bundle(path, meta, numpy_state(model), int8=int8, finish=complete)


def write_teacher_graph(path: str | Path) -> Path:
    """(Re)write a teacher bundle's model.onnx: its head network, from the weights as read back."""
    from emolive.plugins.student.bundle import export_bundle_graph

    bundle, arch, hyper, _ = read_teacher_bundle(path)
    return export_bundle_graph(Path(path), bundle, arch, hyper)


def load_teacher_bundle(path: str | Path) -> tuple[StudentModel, BundleMeta, list[Stream]]:
    """The network in torch (eval mode), the bundle's metadata and the streams it needs, all checked."""
    from emolive.plugins.student import build_model

    bundle, arch, hyper, streams = read_teacher_bundle(path)
    return build_model(arch, hyper, bundle.tensors), bundle.meta, streams


def read_teacher_bundle(path: str | Path) -> tuple[Bundle, str, dict[str, Any], list[Stream]]:
    """The checked bundle, its network's architecture and own hyperparameters (without the
    `teacher-` prefix and the streams), and the streams it reads."""
    bundle = read_bundle(path, teacher_shapes)
    hyper, streams = _split_streams(bundle.meta, Path(path))
    return bundle, bundle.meta.architecture[len(PREFIX):], hyper, streams


def teacher_shapes(meta: BundleMeta, path: Path) -> Shapes:
    """`read_bundle`'s check: a teacher architecture whose network reads exactly the fused streams' width,
    on the framing the embeddings have (16 kHz, 25 ms frames every 20 ms: plugins.teacher.encoder). A
    frame_shift of 160 loaded, and windows were cut on a grid the embeddings do not have."""
    framing = ("sample_rate", "frame_length", "frame_shift")
    given, embedded = ({name: getattr(c, name) for name in framing} for c in (meta.frontend, FrontEndConfig()))
    if given != embedded:
        raise BundleError(f"{path}: a teacher's frontend must have the embeddings' framing {embedded}, not {given}")
    hyper, streams = _split_streams(meta, path)
    width = sum(s.spec.dim for s in streams)
    return checked_shapes(meta.architecture[len(PREFIX):], hyper, meta, path, width,
                          f"the streams {', '.join(s.label() for s in streams)} give {width} dimensions")


def _split_streams(meta: BundleMeta, path: Path) -> tuple[dict[str, Any], list[Stream]]:
    """The network's own hyperparameters, and the embedding streams listed beside them."""
    if not meta.architecture.startswith(PREFIX):
        raise BundleError(f"{path}: architecture {meta.architecture!r} is not a teacher ({PREFIX}...)")
    hyper = dict(meta.hyperparameters)
    listed = hyper.pop("streams", None)
    if not isinstance(listed, list) or not listed or not all(isinstance(s, dict) for s in listed):
        raise BundleError(f"{path}: hyperparameters need 'streams': [{{model, layer, checkpoint}}, ...] (a teacher "
                          "needs at least one embedding stream)")
    streams = []
    for i, record in enumerate(listed, 1):
        try:
            streams.append(stream_from_dict(record))
        except (KeyError, TypeError, ValueError) as err:  # the stream's own fault, not the list's shape
            raise BundleError(f"{path}: embedding stream {i} of {len(listed)}: {err}") from err
    return hyper, streams
