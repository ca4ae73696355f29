"""SSL embeddings for training: per-stream disk caches and frame-by-frame fusion (paper 3.2, Table 3)."""
from __future__ import annotations

from emolive.plugins.teacher import Stream, parse_stream
from emolive.trainer.data.cache import MFB
from emolive.trainer.embeddings.cache import EmbeddingCache, EmbeddingFeatures
from emolive.trainer.errors import TrainerError


def parse_streams(text: str) -> list[Stream]:
    """`NAME[:LAYER],NAME[:LAYER]...` (fusion order) -> streams; a repeated stream is an error."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if MFB in parts and len(parts) > 1:  # it had been called an "unknown pretrained model"
        raise TrainerError(f"{text!r}: mfb, the front end's features (a student's), is not fused with embeddings "
                           "by `trainer train`: give --features mfb, or embedding streams alone (docs/teachers.md's "
                           "fused rows are benchmarks/teacher_layers.py's)")
    streams = [parse_stream(part) for part in parts]
    if not streams:  # a network of zero inputs failed deep inside torch
        raise TrainerError(f"{text!r} names no stream: give mfb, or NAME[:LAYER] such as whisper-base:5")
    if len(set(streams)) != len(streams):
        raise TrainerError(f"{text!r} names a stream twice")
    return streams


__all__ = ["EmbeddingCache", "EmbeddingFeatures", "parse_streams"]
