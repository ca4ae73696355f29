"""Whisper's encoder in PyTorch, every layer's frames, on the front end's 20 ms frame grid.

Whisper's input is an 80-band log-mel spectrogram (25 ms Hann window, 10 ms hop, Slaney mel
to 8 kHz, log10 floored 8 decades below the clip's peak, then (x + 4) / 4); two convolutions
(the second of stride 2) give 50 frames a second, six pre-norm transformer layers of width 512
follow, and a final layer norm. Encoder frame k is centred on sample 320 k, 12.5 ms before the
centre of MFB+F0 frame k (samples [320 k, 320 k + 400)); both have 50 frames a second, and the
first `num_frames(n)` of a clip's encoder frames are used, so the two kinds of features have the
same count and fuse frame by frame.

Layer numbering: 1..6 are the transformer layers' outputs, 7 is layer 6 after the final layer
norm (what `ctranslate2.models.Whisper.encode` returns; tests/test_whisper.py checks it against
that). Inputs are fed as they are, not padded to Whisper's 30 s training length: on this
project's clips that costs ten times the compute for no measured gain (docs/teachers.md); a
clip longer than 30 s is cut into 30 s pieces whose frames are joined.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emolive.plugins.teacher.encoder import num_frames

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


class WhisperEncoder(nn.Module):
    """conv x2 + positions + 6 pre-norm transformer layers + final norm; returns every layer."""

    def __init__(self, state: dict[str, np.ndarray]) -> None:
        super().__init__()
        t = {k.removeprefix("encoder/"): torch.from_numpy(np.asarray(v, np.float32)) for k, v in state.items()
             if v.dtype != np.int16}
        self.heads = int(state["encoder/num_heads"]) if "encoder/num_heads" in state else 8
        self.register_buffer("mel_filters", torch.from_numpy(slaney_mel_filters()))
        self.register_buffer("window", torch.hann_window(N_FFT))
        self.conv1, self.conv2 = nn.Conv1d(N_MELS, WIDTH, 3, padding=1), nn.Conv1d(WIDTH, WIDTH, 3, stride=2, padding=1)
        for name, conv in (("conv1", self.conv1), ("conv2", self.conv2)):
            conv.weight.data, conv.bias.data = t[f"{name}/weight"], t[f"{name}/bias"]
        self.register_buffer("positions", t["position_encodings/encodings"])
        self.layers = nn.ModuleList(_Layer(t, f"layer_{i}/", self.heads) for i in range(LAYERS))
        self.norm = _norm(t, "layer_norm/")

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """[80, n // 160] Whisper log-mel of one 16 kHz waveform [n]."""
        spec = torch.stft(audio, N_FFT, HOP, window=self.window, return_complex=True)[:, :-1].abs() ** 2
        logs = torch.clamp(self.mel_filters @ spec, min=1e-10).log10()
        return (torch.maximum(logs, logs.max() - 8.0) + 4.0) / 4.0

    def forward(self, mel: torch.Tensor, upto: int = LAYERS + 1) -> list[torch.Tensor]:
        """Layers 1..`upto` ([batch, frames, 512] each) of log-mel input [batch, 80, mel frames]."""
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)
        x = x + self.positions[: x.shape[1]]
        out = []
        for layer in self.layers[: min(upto, LAYERS)]:
            x = layer(x)
            out.append(x)
        if upto > LAYERS:
            out.append(self.norm(x))
        return out


def _norm(t: dict[str, torch.Tensor], prefix: str) -> nn.LayerNorm:
    norm = nn.LayerNorm(WIDTH)
    norm.weight.data, norm.bias.data = t[prefix + "gamma"], t[prefix + "beta"]
    return norm


def _linear(t: dict[str, torch.Tensor], prefix: str) -> nn.Linear:
    weight = t[prefix + "weight"]
    linear = nn.Linear(weight.shape[1], weight.shape[0])
    linear.weight.data, linear.bias.data = weight, t[prefix + "bias"]
    return linear


class _Layer(nn.Module):
    """x + attention(norm(x)), then x + mlp(norm(x)); query, key and value in one projection."""

    def __init__(self, t: dict[str, torch.Tensor], prefix: str, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.attn_norm, self.qkv = _norm(t, prefix + "self_attention/layer_norm/"), _linear(t, prefix + "self_attention/linear_0/")
        self.attn_out = _linear(t, prefix + "self_attention/linear_1/")
        self.mlp_norm, self.mlp_in = _norm(t, prefix + "ffn/layer_norm/"), _linear(t, prefix + "ffn/linear_0/")
        self.mlp_out = _linear(t, prefix + "ffn/linear_1/")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        x = x + self.attn_out(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))
        return x + self.mlp_out(F.gelu(self.mlp_in(self.mlp_norm(x))))


class WhisperFrameEncoder:
    """Whisper layers of lists of waveforms, one clip (or 30 s piece) at a time, on the MFB frame grid."""

    def __init__(self, model: WhisperEncoder, device: str = "cpu") -> None:
        self.device = device
        self.model = model.eval().to(device)
        self.num_layers, self.dim = LAYERS + 1, WIDTH

    @torch.inference_mode()
    def embed_layers(self, wave: np.ndarray, layers: Sequence[int]) -> list[np.ndarray]:
        """Layers `layers` (1-based) of one waveform, float32 [num_frames(n), 512] each."""
        for layer in layers:
            if not 1 <= layer <= self.num_layers:
                raise ValueError(f"layer must be in 1..{self.num_layers}, not {layer}")
        n = num_frames(len(wave))
        pieces: list[list[torch.Tensor]] = []
        for start in range(0, max(len(wave), 1), MAX_SAMPLES):
            piece = torch.from_numpy(np.asarray(wave[start:start + MAX_SAMPLES], np.float32)).to(self.device)
            if len(piece) < N_FFT:
                continue
            hidden = self.model(self.model.log_mel(piece)[None], upto=max(layers))
            pieces.append([hidden[layer - 1][0] for layer in layers])
        if n == 0 or not pieces:
            return [np.zeros((0, WIDTH), np.float32) for _ in layers]
        return [torch.cat([p[i] for p in pieces])[:n].float().cpu().numpy() for i in range(len(layers))]

    def embed(self, waveforms: Sequence[np.ndarray], layer: int) -> list[np.ndarray]:
        """One layer of each waveform (the SSLEncoder interface)."""
        return [self.embed_layers(w, [layer])[0] for w in waveforms]
