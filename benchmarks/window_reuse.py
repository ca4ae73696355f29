"""Can overlapping windows share the student's GRU? The estimate error of reusing state, measured.

Windows of 3 s every 0.5 s hear each frame six times, and each window's GRU starts from zero: five
sixths of the model's cost (57 % of an analysis) is recomputation. Sharing it is exact only where
a GRU started earlier has forgotten its start by the time it reaches the window, i.e. where its
state has converged to the fresh window's. This measures that on real speech with the default
student: each window's A/V/D from its own zero-state GRU (the engine's estimate) against the same
window pooled from a GRU started `warm-up` frames earlier (0 frames: the engine's own, a control whose error is float noise;
the previous hop, 1 s, 2 s) or running
since the stream began (a streaming model's estimate), and how many windows' states had converged
(all 256 state values within 1e-5) by the window's last frame. GRU steps per window are printed
beside: the saving each variant would buy.
Run: .venv/bin/python benchmarks/window_reuse.py [--seconds 120] [--bundle DIR]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from _common import corpus_speech, print_table  # first: it sets one thread for every library

import numpy as np
import torch
from invariance import cells

from emolive.engine.features import compute
from emolive.engine.features.normalise import as_one_stream
from emolive.plugins.student.bundle import load_bundle
from emolive.plugins.student.plugin import DEFAULT_BUNDLE

WINDOW, HOP = 150, 25  # frames: the engine's default 3 s window and 0.5 s hop
CONVERGED = 1e-5  # largest state difference counted as the same state (float32 noise is ~1e-7)


def layer_states(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """[T, layers * hidden]: every layer's GRU state after each frame of `x` [T, D] (normalised), from zero."""
    states, v = [], model.input_layer(x[None])
    for layer in range(model.layers):
        gru = torch.nn.GRU(v.shape[2], model.hidden, batch_first=True)
        gru.load_state_dict({name[:-1] + "0": value for name, value in model.gru.state_dict().items()
                             if name.endswith(str(layer))})
        v, _ = gru(v)
        states.append(v[0])
    return torch.cat(states, 1)


def estimate(model: torch.nn.Module, outputs: torch.Tensor) -> np.ndarray:
    """A/V/D of a window from its last layer's outputs [WINDOW, hidden] (mean pooling, then the heads)."""
    mid, half = 4.0, 3.0
    return (mid + half * torch.tanh(model.regression(model.embedding(outputs.mean(0))))).numpy()


VARIANTS = [("its own start (control)", 0), ("previous hop", HOP), ("1 s before", 50), ("2 s before", 100),
            ("stream start", None)]  # (name, frames the GRU ran before the window; None: since the stream began)


@torch.inference_mode()
def reuse_errors(bundle: str | Path, seconds: float, variants: list[tuple[str, int | None]] = VARIANTS
                 ) -> dict[str, tuple[np.ndarray, float]]:
    """Per variant of `variants` (VARIANTS' form): [windows, 3] |A/V/D error| against each window's own
    zero-state GRU, and the share of windows whose state had converged by their last frame."""
    model, meta = load_bundle(bundle)
    frames = as_one_stream(compute(corpus_speech("ravdess", seconds), meta.frontend), meta.stream_normalisation)
    x = (torch.from_numpy(frames) - model.feature_mean) / model.feature_std
    last = slice(-model.hidden, None)
    starts = range(4 * HOP * 2, len(x) - WINDOW + 1, HOP)  # every window with 2 s of audio before it
    exact = {s: layer_states(model, x[s:s + WINDOW]) for s in starts}
    streaming = layer_states(model, x)
    out = {}
    for name, warm_up in variants:
        errors, converged = [], 0
        for s in starts:
            states = (streaming[s:s + WINDOW] if warm_up is None
                      else layer_states(model, x[s - warm_up:s + WINDOW])[warm_up:])
            errors.append(np.abs(estimate(model, states[:, last]) - estimate(model, exact[s][:, last])))
            converged += bool((states[-1] - exact[s][-1]).abs().max() < CONVERGED)
        out[name] = (np.array(errors), converged / len(starts))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--bundle", default=DEFAULT_BUNDLE, help="a student bundle (default: the shipped one)")
    args = parser.parse_args()
    results = reuse_errors(args.bundle, args.seconds)
    rows = []
    for name, warm_up in VARIANTS:
        errors, converged = results[name]
        steps = HOP if warm_up is None else WINDOW + warm_up
        rows.append([name, f"{steps} / {WINDOW}", f"{100 * converged:.0f} %", *cells(errors)])
    print(f"{len(errors)} windows of RAVDESS speech, {args.bundle}; error on the 1-7 scale: median / p95 / max")
    print_table(["GRU started at", "steps per window (engine: 150)", "state converged", "activation", "valence",
                 "dominance"], rows)


if __name__ == "__main__":
    main()
