"""The shipped teacher as `emolive models` lists it, read from its bundle's config: listing the
models must not import torch or read the encoder's weights (seconds and hundreds of MB)."""
from __future__ import annotations

from pathlib import Path

from emolive.engine.bundle import BundleMeta
from emolive.engine.plugin import ModelSummary, bundle_summary, require_package

DEFAULT_BUNDLE = Path(__file__).resolve().parent / "default"


def streams_label(meta: BundleMeta) -> str:
    """What a teacher's network reads: its width and embedding streams, e.g. "512-dim whisper-base:5"."""
    streams = meta.hyperparameters["streams"]
    return f"{meta.hyperparameters['input_dim']}-dim " + " + ".join(f"{s['model']}:{s['layer']}" for s in streams)


def default_summary() -> ModelSummary:
    """The shipped teacher (a GRU on Whisper base's layers 1 and 5); it runs on CUDA where torch finds one,
    else on the CPU (onnxruntime, which builds Whisper's graph with the `teacher` extra's onnx)."""
    require_package("onnx", "teacher")
    from emolive.plugins.teacher.whisper_weights import WHISPER_BASE

    WHISPER_BASE.part_files()  # installed (their hash is checked when the encoder loads)

    def reads(meta: BundleMeta) -> tuple[str, str]:
        encoders = dict.fromkeys(s["model"] for s in meta.hyperparameters["streams"])
        return streams_label(meta), " + ".join(encoders)

    return bundle_summary(DEFAULT_BUNDLE, "cuda|cpu", reads)
