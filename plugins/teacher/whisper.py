"""Whisper's encoder in PyTorch, every layer's frames, on the front end's 20 ms frame grid.

Its input (the log-mel spectrogram, 30 s pieces, frames joined on the MFB grid) is
whisper_input's, shared with the live teacher's onnxruntime graph (whisper_graph.py). Two
convolutions (the second of stride 2) give 50 frames a second, six pre-norm transformer layers of
width 512 follow, and a final layer norm. Encoder frame k is centred on sample 320 k, 12.5 ms before
the centre of MFB+F0 frame k (samples [320 k, 320 k + 400)); both have 50 frames a second, and the
first `num_frames(n)` of a clip's encoder frames are used, so the two kinds of features have the
same count and fuse frame by frame.

Layer numbering: 1..6 are the transformer layers' outputs, 7 is layer 6 after the final layer
norm (what `ctranslate2.models.Whisper.encode` returns; tests/test_whisper.py checks it against
that).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emolive.plugins.teacher.whisper_input import LAYERS, N_MELS, WIDTH, LayerEncoder, layer_frames


class WhisperEncoder(nn.Module):
    """conv x2 + positions + 6 pre-norm transformer layers + final norm; returns every layer."""

    def __init__(self, state: dict[str, np.ndarray]) -> None:
        super().__init__()
        t = {k.removeprefix("encoder/"): torch.from_numpy(np.asarray(v, np.float32)) for k, v in state.items()
             if v.dtype != np.int16}
        self.heads = int(state["encoder/num_heads"]) if "encoder/num_heads" in state else 8
        self.conv1, self.conv2 = nn.Conv1d(N_MELS, WIDTH, 3, padding=1), nn.Conv1d(WIDTH, WIDTH, 3, stride=2, padding=1)
        for name, conv in (("conv1", self.conv1), ("conv2", self.conv2)):
            conv.weight.data, conv.bias.data = t[f"{name}/weight"], t[f"{name}/bias"]
        self.register_buffer("positions", t["position_encodings/encodings"])
        self.layers = nn.ModuleList(_Layer(t, f"layer_{i}/", self.heads) for i in range(LAYERS))
        self.norm = _norm(t, "layer_norm/")

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


class WhisperFrameEncoder(LayerEncoder):
    """Whisper layers of lists of waveforms, one clip (or 30 s piece) at a time, on the MFB frame grid."""

    def __init__(self, model: WhisperEncoder, device: str = "cpu") -> None:
        self.device = device
        self.model = model.eval().to(device)
        self.num_layers, self.dim = LAYERS + 1, WIDTH

    @torch.inference_mode()
    def embed_layers(self, wave: np.ndarray, layers: Sequence[int]) -> list[np.ndarray]:
        """Layers `layers` (1-based) of one waveform, float32 [num_frames(n), 512] each."""
        def encode(mel: np.ndarray) -> list[np.ndarray]:
            hidden = self.model(torch.from_numpy(mel)[None].to(self.device), upto=max(layers))
            return [hidden[layer - 1][0].float().cpu().numpy() for layer in layers]

        return layer_frames(wave, layers, encode, self.num_layers)
