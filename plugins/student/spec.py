"""What a student bundle must hold, known without torch: architectures, bounded hyperparameters, tensor shapes.

The light engine validates bundles before it builds anything, and it never imports torch, so the
shapes of the GRU/TCGRU modules in `model.py` are written out here as plain arithmetic. A test
(tests/test_bundle.py) compares them with the modules' real state_dicts for both architectures,
so the two cannot drift apart silently.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from emolive.engine.bundle import BundleError, BundleMeta, Shapes, bounded_ints

ARCHITECTURE_NAMES = ("gru", "tcgru")
# The runtime graph's contract (graph.py writes it, plugin.py runs it): input and output names in
# order, and the metadata key holding the SHA-256 of the model.safetensors the graph was made from.
GRAPH_INPUTS = ("features", "lengths")
GRAPH_OUTPUTS = ("avd", "class_probs", "embedding")
WEIGHTS_DIGEST_KEY = "emolive_weights_sha256"
GAIN_RANGE = 10.0  # natural-log power units below the loudest frame kept by remove_gain (~43 dB)
MAX_PARAMETERS = 64_000_000  # 256 MB of float32: far above any student or teacher head, below a memory blow-up
# Inclusive bounds per hyperparameter; gain_dims is further bounded by input_dim.
HYPERPARAMETER_BOUNDS = {
    "input_dim": (1, 8192),  # 43 for MFB+F0; a teacher's fused SSL embeddings reach a few thousand
    "n_classes": (0, 1024),
    "hidden": (1, 4096),
    "layers": (1, 8),
    "embedding_dim": (1, 4096),
    "gain_dims": (0, 8192),
}


def network_shapes(arch: str, hyperparameters: dict[str, Any], where: str | Path) -> Shapes:
    """The state_dict shapes of a GRU/TCGRU network, after checking its architecture and hyperparameters."""
    if arch not in ARCHITECTURE_NAMES:
        raise BundleError(f"{where}: unknown architecture {arch!r}; known: {', '.join(ARCHITECTURE_NAMES)}")
    bounded_ints(hyperparameters, HYPERPARAMETER_BOUNDS, str(where))
    hp = hyperparameters
    d, h, e, c = hp["input_dim"], hp["hidden"], hp["embedding_dim"], hp["n_classes"]
    if hp["gain_dims"] > d:
        raise BundleError(f"{where}: gain_dims {hp['gain_dims']} is more than input_dim {d}")
    shapes: dict[str, tuple[int, ...]] = {"feature_mean": (d,), "feature_std": (d,)}
    if arch == "tcgru":
        shapes |= {"time_conv.weight": (d, 1, 3), "time_conv.bias": (d,)}
    for layer in range(hp["layers"]):
        width = (2 * d if arch == "tcgru" else d) if layer == 0 else h
        shapes |= {f"gru.weight_ih_l{layer}": (3 * h, width), f"gru.weight_hh_l{layer}": (3 * h, h),
                   f"gru.bias_ih_l{layer}": (3 * h,), f"gru.bias_hh_l{layer}": (3 * h,)}
    shapes |= {"embedding.0.weight": (e, h), "embedding.0.bias": (e,), "regression.weight": (3, e),
               "regression.bias": (3,)}
    if c:
        shapes |= {"classifier.weight": (c, e), "classifier.bias": (c,)}
    total = sum(math.prod(s) for s in shapes.values())
    if total > MAX_PARAMETERS:
        raise BundleError(f"{where}: these hyperparameters make {total:,} parameters, more than {MAX_PARAMETERS:,}")
    return shapes


def student_shapes(meta: BundleMeta, path: Path) -> Shapes:
    """`read_bundle`'s check for student bundles: the network reads the front end and has a logit per class."""
    return checked_shapes(meta.architecture, meta.hyperparameters, meta, path, meta.frontend.num_features,
                          f"the front end gives {meta.frontend.num_features} features")


def checked_shapes(architecture: str, hyperparameters: dict[str, Any], meta: BundleMeta, path: Path, width: int,
                   source: str) -> Shapes:
    """The one check every GRU/TCGRU bundle (student or teacher) passes: bounded hyperparameters,
    an input as wide as what feeds it (`width`, described by `source`), a logit per class name."""
    shapes = network_shapes(architecture, hyperparameters, path)
    if hyperparameters["input_dim"] != width:
        raise BundleError(f"{path}: input_dim {hyperparameters['input_dim']} but {source}")
    if hyperparameters["n_classes"] != len(meta.class_names):
        raise BundleError(f"{path}: n_classes {hyperparameters['n_classes']} but {len(meta.class_names)} class names")
    return shapes
