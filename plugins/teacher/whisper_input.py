"""What Whisper's encoder reads, in numpy: the log-mel spectrogram, the 30 s pieces of a long
input, and how each piece's frames join on the front end's 20 ms grid.

One implementation for every runtime (the PyTorch encoder of training and embedding, the
onnxruntime graph of the live teacher), so a teacher is trained on exactly the input it later
runs on. Whisper's input is an 80-band log-mel spectrogram: 25 ms periodic Hann window, 10 ms
hop, centred frames (reflect padding, as torch.stft), Slaney mel filters to 8 kHz, log10
floored at 1e-10 and at 8 decades below the piece's peak, then (x + 4) / 4. Inputs are not padded
to Whisper's 30 s training length (docs/teachers.md measured it); a longer input is cut into
30 s pieces (the position table's 1500 frames) whose frames are joined.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from emolive.plugins.teacher.frames import num_frames

SAMPLE_RATE, N_FFT, HOP, N_MELS = 16000, 400, 160, 80
MAX_SAMPLES = 30 * SAMPLE_RATE  # the position table's 1500 frames
WIDTH, LAYERS = 512, 6


def slaney_mel_filters(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] triangular filters on the Slaney mel scale, area-normalised:
    the filterbank Whisper was trained with (librosa's default `filters.mel`)."""
    def hz_to_mel(f):
        f = np.asarray(f, np.float64)
        return np.where(f < 1000.0, f / (200.0 / 3), 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27))

    def mel_to_hz(m):
        m = np.asarray(m, np.float64)
        return np.where(m < 15.0, m * (200.0 / 3), 1000.0 * np.exp((m - 15.0) * (np.log(6.4) / 27)))

    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    lower, upper = -ramps[:-2] / widths[:-1, None], ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    return (weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)


_FILTERS = slaney_mel_filters().astype(np.float64)
_WINDOW = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann (torch.hann_window)


def log_mel(piece: np.ndarray) -> np.ndarray:
    """float32 [80, n // 160] Whisper log-mel of one 16 kHz piece of n >= 400 samples."""
    padded = np.pad(np.asarray(piece, np.float64), N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][: len(piece) // HOP]
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=1)) ** 2
    logs = np.log10(np.maximum(power @ _FILTERS.T, 1e-10))
    return ((np.maximum(logs, logs.max() - 8.0) + 4.0) / 4.0).T.astype(np.float32)


class LayerEncoder:
    """An encoder giving several Whisper layers in one pass (`embed_layers`, `embed_all`), and one
    layer of many waveforms (`embed`: the SSLEncoder interface the embedding cache uses)."""

    def embed_layers(self, wave: np.ndarray, layers: Sequence[int]) -> list[np.ndarray]:
        raise NotImplementedError

    def embed(self, waveforms: Sequence[np.ndarray], layer: int) -> list[np.ndarray]:
        return [self.embed_layers(w, [layer])[0] for w in waveforms]

    def embed_all(self, waveforms: Sequence[np.ndarray], layers: Sequence[int]) -> list[list[np.ndarray]]:
        """`layers` of each waveform, [layer][waveform], from one pass of the encoder per waveform."""
        per_wave = [self.embed_layers(w, layers) for w in waveforms]
        return [[frames[j] for frames in per_wave] for j in range(len(layers))]


def layer_frames(wave: np.ndarray, layers: Sequence[int], encode: Callable[[np.ndarray], list[np.ndarray]],
                 num_layers: int = LAYERS + 1) -> list[np.ndarray]:
    """Layers `layers` (1-based) of one waveform, float32 [num_frames(n), 512] each: `encode(mel)`
    gives those layers' frames [frames, 512] of one piece's log-mel [80, frames]."""
    for layer in layers:
        if not 1 <= layer <= num_layers:
            raise ValueError(f"layer must be in 1..{num_layers}, not {layer}")
    n = num_frames(len(wave))
    pieces = [encode(log_mel(wave[start:start + MAX_SAMPLES])) for start in range(0, max(len(wave), 1), MAX_SAMPLES)
              if len(wave[start:start + MAX_SAMPLES]) >= N_FFT]
    if n == 0 or not pieces:
        return [np.zeros((0, WIDTH), np.float32) for _ in layers]
    return [np.concatenate([p[i] for p in pieces])[:n].astype(np.float32, copy=False) for i in range(len(layers))]
