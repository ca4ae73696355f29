"""The student network's forward pass in float64 numpy, from a bundle's tensors: the check that
a bundle's model.onnx computes what its weights say.

model.onnx is stamped with the digest of the weights it was exported from, but a stamp is only
a claim: a hostile bundle can pair honest weights with another graph. At load the light engine
runs the graph and this reference on one fixed input and refuses a disagreement, without torch.
It follows plugins/student/model.py step by step (remove_gain, normalisation, the TCGRU's
depthwise convolution and skip, the GRU in torch's gate order r, z, n, masked mean pooling, the
embedding, the bounded regression head and the class softmax).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from emolive.engine.schema import SCALE
from emolive.plugins.student.spec import GAIN_RANGE


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def reference_forward(tensors: Mapping[str, np.ndarray], hyperparameters: Mapping[str, int], arch: str,
                      features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """avd [3], class probabilities [C] and embedding [E] of one clip's features [T, D]."""
    t = {k: np.asarray(v, np.float64) for k, v in tensors.items()}
    x = np.asarray(features, np.float64).copy()
    gain = hyperparameters["gain_dims"]
    if gain:
        peak = x[:, :gain].mean(1).max()
        x[:, :gain] = np.maximum(x[:, :gain] - peak, -GAIN_RANGE)
    x = (x - t["feature_mean"]) / t["feature_std"]
    if arch == "tcgru":
        padded = np.pad(x, ((1, 1), (0, 0)))
        w = t["time_conv.weight"][:, 0, :]  # [D, 3]
        conv = sum(padded[k:k + len(x)] * w[:, k] for k in range(3)) + t["time_conv.bias"]
        x = np.concatenate([conv, x], axis=1)
    for layer in range(hyperparameters["layers"]):
        w_i, w_h = t[f"gru.weight_ih_l{layer}"], t[f"gru.weight_hh_l{layer}"]
        b_i, b_h = t[f"gru.bias_ih_l{layer}"], t[f"gru.bias_hh_l{layer}"]
        h, out = np.zeros(w_h.shape[1]), []
        for frame in x:
            gi, gh = w_i @ frame + b_i, w_h @ h + b_h
            r_i, z_i, n_i = np.split(gi, 3)
            r_h, z_h, n_h = np.split(gh, 3)
            r, z = _sigmoid(r_i + r_h), _sigmoid(z_i + z_h)
            n = np.tanh(n_i + r * n_h)
            h = (1 - z) * n + z * h
            out.append(h)
        x = np.array(out)
    embedding = np.maximum(t["embedding.0.weight"] @ x.mean(0) + t["embedding.0.bias"], 0)
    mid, half = (SCALE[1] + SCALE[0]) / 2, (SCALE[1] - SCALE[0]) / 2
    avd = mid + half * np.tanh(t["regression.weight"] @ embedding + t["regression.bias"])
    if "classifier.weight" in t:
        logits = t["classifier.weight"] @ embedding + t["classifier.bias"]
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
    else:
        probs = np.zeros(0)
    return avd, probs, embedding


def probe_features(mean: np.ndarray, std: np.ndarray, frames: int = 24, seed: int = 0) -> np.ndarray:
    """A fixed input in the range the model was trained on: the feature statistics plus unit noise."""
    rng = np.random.default_rng(seed)
    return (mean + std * rng.standard_normal((frames, len(mean)))).astype(np.float32)
