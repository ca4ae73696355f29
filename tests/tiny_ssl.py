"""Tiny random wav2vec 2.0 / HuBERT stand-ins for tests (no pretrained weights exist here).

Each keeps its real bundle's conv kernel/stride stack (so the framing is the real one), norm
modes, waveform normalisation and weight file name; only widths and depth shrink.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torchaudio

from emolive.plugins.teacher import PRETRAINED, Pretrained

LAYERS, DIM = 2, 32


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache in tmp; any download attempt fails the test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_network(url, *args, **kwargs):
        raise AssertionError(f"tried to download {url}")
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "torch" / "hub" / "checkpoints"


def tiny(name: str) -> Pretrained:
    real = PRETRAINED[name]
    params = dict(real.pipeline_bundle._params)
    params.update(
        extractor_conv_layer_config=[(8, k, s) for _, k, s in params["extractor_conv_layer_config"]],
        encoder_embed_dim=DIM, encoder_num_layers=LAYERS, encoder_num_heads=2, encoder_ff_interm_features=64,
        encoder_pos_conv_kernel=16, encoder_pos_conv_groups=4,
    )
    return replace(real, bundle=replace(real.pipeline_bundle, _params=params))


def install(monkeypatch, *names: str) -> list[Pretrained]:
    """Swap the registry's models for tiny ones (the CLI and bundles resolve names through it)."""
    specs = [tiny(n) for n in names]
    for spec in specs:
        monkeypatch.setitem(PRETRAINED, spec.name, spec)
    return specs


def random_model(spec: Pretrained, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torchaudio.models.wav2vec2_model(**spec.pipeline_bundle._params).eval()


def save_hub_weights(spec: Pretrained, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights written where `bundle.get_model()` looks, in the published file's layout."""
    state = random_model(spec, seed).state_dict()
    saved = dict(state)
    axes = getattr(spec.pipeline_bundle, "_remove_aux_axis", ())
    if axes:  # fairseq ASR files carry unused output rows that torchaudio drops on loading
        for key in ("aux.weight", "aux.bias"):
            rows = list(state[key])
            for axis in sorted(axes):
                rows.insert(axis, torch.zeros_like(rows[0]))
            saved[key] = torch.stack(rows)
    spec.hub_file().parent.mkdir(parents=True, exist_ok=True)
    torch.save(saved, spec.hub_file())
    return state

