"""16 kHz audio -> 20 ms frame embeddings of one transformer layer of a wav2vec 2.0 / HuBERT model.

The models' convolutional encoder has a receptive field of 400 samples and a stride of 320, the
front end's 25 ms / 20 ms snip-edges framing: embedding frame k covers samples [320k, 320k + 400),
like MFB+F0 frame k, so the two kinds of features have the same frame count and can be swapped or
fused frame by frame.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from emolive.plugins.teacher.frames import num_frames

BATCH_SECONDS = 160.0  # padded audio per batch: bounds GPU memory (a large model's activations)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class SSLEncoder:
    """Runs a bare torchaudio `Wav2Vec2Model` on lists of waveforms, batched, on one device.

    Batches are padded and masked with `lengths`. Models whose first conv layer uses group norm
    (the base models) normalise each channel over the whole padded time axis, so padding would
    change their output: they run one utterance at a time. Waveform normalisation (large
    models) is per utterance over its real samples, as in fairseq.
    """

    def __init__(self, model: nn.Module, normalize_waveform: bool, device: str | None = None,
                 batch_seconds: float = BATCH_SECONDS) -> None:
        self.device = device or default_device()
        self.model = model.eval().to(self.device)
        self.normalize_waveform = normalize_waveform
        self.num_layers = len(model.encoder.transformer.layers)
        self.dim = model.encoder.feature_projection.projection.out_features
        first = model.feature_extractor.conv_layers[0].layer_norm
        self.max_batch = 1 if isinstance(first, nn.GroupNorm) else None
        self.batch_samples = int(batch_seconds * 16000)

    def embed_all(self, waveforms: Sequence[np.ndarray], layers: Sequence[int]) -> list[list[np.ndarray]]:
        """`layers` of each waveform, [layer][waveform] (one pass per layer)."""
        return [self.embed(waveforms, layer) for layer in layers]

    @torch.inference_mode()
    def embed(self, waveforms: Sequence[np.ndarray], layer: int) -> list[np.ndarray]:
        """Output of transformer layer `layer` (1-based) per waveform: float32 [num_frames(n), dim]."""
        if not 1 <= layer <= self.num_layers:
            raise ValueError(f"layer must be in 1..{self.num_layers}, not {layer}")
        out = [np.zeros((0, self.dim), np.float32) for _ in waveforms]
        todo = sorted((i for i, w in enumerate(waveforms) if num_frames(len(w))), key=lambda i: -len(waveforms[i]))
        for batch in self._batches(todo, [len(w) for w in waveforms]):
            lengths = torch.tensor([len(waveforms[i]) for i in batch])
            x = torch.zeros(len(batch), int(lengths[0]))
            for row, i in enumerate(batch):
                x[row, : lengths[row]] = torch.from_numpy(self._normalised(waveforms[i]))
            layers, _ = self.model.extract_features(x.to(self.device), lengths.to(self.device), num_layers=layer)
            hidden = layers[layer - 1].float().cpu().numpy()
            for row, i in enumerate(batch):
                out[i] = np.ascontiguousarray(hidden[row, : num_frames(int(lengths[row]))])
        return out

    def _normalised(self, wave: np.ndarray) -> np.ndarray:
        wave = np.asarray(wave, dtype=np.float32)
        if not self.normalize_waveform:
            return wave
        return ((wave - wave.mean()) / np.sqrt(wave.var() + 1e-5)).astype(np.float32)

    def _batches(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """Longest first; a batch grows while its padded size stays within the sample budget."""
        batches: list[list[int]] = []
        for i in order:
            if batches and (self.max_batch is None or len(batches[-1]) < self.max_batch) \
                    and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= self.batch_samples:
                batches[-1].append(i)
            else:
                batches.append([i])
        return batches
