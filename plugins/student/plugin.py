"""The student as an engine plugin: a GRU/TCGRU bundle run by onnxruntime, without torch.

Loading checks the bundle the way every bundle is checked (engine.bundle: config fields, the
safetensors header against the architecture, finite weights), then runs the bundle's model.onnx,
which must carry the digest of exactly that model.safetensors. The graph holds everything the
model does per window (see graph.py), so a prediction here is one `session.run`.

One intra-op thread by default: a 3 s window is far too small a job to split (torch's pool made the
demo clip several times slower on a busy 2-core machine), and one thread keeps latency even.
Live runs call it one window at a time, offline runs in batches (engine.runner decides).
The torch path (`torch_plugin.py`, model `student-torch`) stays for the teacher head and comparisons.
"""
from __future__ import annotations

import math

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from onnxruntime.capi.onnxruntime_pybind11_state import (Fail, InvalidArgument, InvalidGraph, InvalidProtobuf,
                                                         NotImplemented, RuntimeException)

from emolive.engine.bundle import WEIGHTS_FILE, Bundle, BundleError, BundleMeta, read_bundle, read_graph
from emolive.engine.defaults import DEFAULT_MODEL
from emolive.engine.onnx_external import GraphFormatError, uses_external_data
from emolive.engine.plugin import ModelSummary, Prediction, bundle_summary, require_package
from emolive.engine.schema import printable
from emolive.plugins.student.reference import probe_features, reference_forward
from emolive.plugins.student.spec import GRAPH_INPUTS, GRAPH_OUTPUTS, WEIGHTS_DIGEST_KEY, student_shapes

DEFAULT_BUNDLE = Path(__file__).resolve().parent / "default"
_ORT_ERRORS = (Fail, InvalidArgument, InvalidGraph, InvalidProtobuf, NotImplemented)


class StudentPlugin:
    """Runs a student bundle's graph; features in, A/V/D + class probabilities + embedding out."""

    device = "cpu"
    reads_samples = False  # front-end features alone (engine.plugin.reads_samples)

    def __init__(self, session: ort.InferenceSession, meta: BundleMeta, name: str, path: Path):
        self.session, self.meta, self.name, self.path = session, meta, name, path
        self.input_dim = meta.hyperparameters["input_dim"]

    def predict(self, features: np.ndarray, samples: np.ndarray) -> Prediction:
        return self.predict_batch([features], [samples])[0]

    def predict_batch(self, features: list[np.ndarray], samples: list[np.ndarray]) -> list[Prediction]:
        batch, lengths = pad_features(features, self.input_dim)
        try:
            avd, probs, emb = self.session.run(list(GRAPH_OUTPUTS), {"features": batch, "lengths": lengths})
        except (*_ORT_ERRORS, RuntimeException) as err:
            raise BundleError(f"{self.path}: model.onnx failed to run ({printable(str(err).splitlines()[0], 200)})"
                              ) from None
        return [Prediction(avd[i], probs[i], emb[i]) for i in range(len(features))]  # checked by the engine

    def size_bytes(self) -> int:
        return (self.path / WEIGHTS_FILE).stat().st_size


def pad_features(features: list[np.ndarray], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The one batch padding, of the engine and the trainer: float32 [batch, longest (>= 1), dim],
    zeros after each clip's frames, and int64 lengths; one non-empty clip passes without a copy."""
    lengths = np.array([len(f) for f in features], dtype=np.int64)
    if len(features) == 1 and lengths[0]:
        return np.ascontiguousarray(features[0], dtype=np.float32)[None], lengths
    batch = np.zeros((len(features), max(int(lengths.max()), 1), dim), np.float32)
    for i, f in enumerate(features):
        batch[i, : len(f)] = f
    return batch, lengths


def load_student(path: str | Path, name: str | None = None, threads: int = 1) -> StudentPlugin:
    """Entry point for bundle architectures "gru" and "tcgru"."""
    path = Path(path)
    bundle = read_bundle(path, student_shapes)
    return graph_plugin(path, bundle, bundle.meta.architecture, bundle.meta.hyperparameters, name, threads)


def graph_plugin(path: Path, bundle: Bundle, arch: str, hyperparameters: dict[str, Any], name: str | None = None,
                 threads: int = 1) -> StudentPlugin:
    """The plugin running a read bundle's model.onnx, checked against its weights: those of
    network `arch` with `hyperparameters` (a student's own, or a teacher's head)."""
    hint = f"write it with `trainer export --into-bundle {path}`"
    graph = read_graph(path)
    try:
        external = uses_external_data(graph)
    except GraphFormatError as err:
        raise BundleError(f"{path}: model.onnx is not a graph onnxruntime can run (not ONNX: {err}); {hint}") from None
    if external:
        raise BundleError(f"{path}: model.onnx keeps tensors in external files, which a bundle may not; {hint}")
    try:
        session = ort.InferenceSession(graph, session_options(threads), providers=["CPUExecutionProvider"])
    except _ORT_ERRORS as err:
        raise BundleError(f"{path}: model.onnx is not a graph onnxruntime can run ({str(err).splitlines()[0]}); "
                          f"{hint}") from None
    digest = session.get_modelmeta().custom_metadata_map.get(WEIGHTS_DIGEST_KEY)
    if digest is None:  # `trainer export --out`'s graph, for other runtimes: "not made from" these weights was false
        raise BundleError(f"{path}: model.onnx records no digest of the weights it holds (a graph exported with "
                          f"`trainer export --out` is for other runtimes); {hint}")
    if digest != bundle.weights_sha256:  # the weights are config.json's, where it records them: the graph is stale
        raise BundleError(f"{path}: model.onnx was not made from this {WEIGHTS_FILE}; if these are the weights you "
                          f"want, {hint}")
    _check_signature(session, hyperparameters, path)
    plugin = StudentPlugin(session, bundle.meta, name or str(path), path)
    _check_agreement(plugin, bundle.tensors, arch, hyperparameters, path)
    return plugin


def session_options(threads: int) -> ort.SessionOptions:
    """`threads` intra- and inter-op threads (module docstring: one by default); an int8 graph's
    DequantizeLinear of its weights folded into float weights once at load (graph.py), where
    onnxruntime would otherwise keep it to fuse into quantized kernels and run it every call
    (1.34 against 1.14 ms a window here)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    return options


# float32 graph against the float64 reference on 24 frames: measured differences ~1e-6 (GRU sums in
# another order); 1e-3 holds on any CPU, and graphs made from other weights miss it by far
AGREEMENT_TOLERANCE = 1e-3


def _check_agreement(plugin: StudentPlugin, tensors: dict[str, np.ndarray], arch: str,
                     hyperparameters: dict[str, Any], path: Path) -> None:
    """The graph computes what the bundle's weights say, on one fixed input (plugins.student.reference)."""
    probe = probe_features(tensors["feature_mean"], tensors["feature_std"])
    got = plugin.predict_batch([probe], [None])[0]
    want = reference_forward(tensors, hyperparameters, arch, probe)
    gaps = [float(np.abs(np.asarray(g, np.float64) - w).max(initial=0.0))
            for g, w in zip((got.avd, got.class_probs, got.embedding), want)]
    worst = math.nan if any(math.isnan(gap) for gap in gaps) else max(gaps)  # max() passed over a NaN
    if not worst <= AGREEMENT_TOLERANCE:
        raise BundleError(f"{path}: model.onnx does not compute what {WEIGHTS_FILE} holds (differs by {worst:.3g} "
                          f"on a fixed input); write it with `trainer export --into-bundle {path}`")


def _check_signature(session: ort.InferenceSession, hp: dict[str, Any], path: Path) -> None:
    """The graph's inputs and outputs are the student's: names, element types and fixed widths."""
    want = dict(zip(GRAPH_INPUTS, [("tensor(float)", hp["input_dim"]), ("tensor(int64)", None)]))
    want_out = dict(zip(GRAPH_OUTPUTS, [3, hp["n_classes"], hp["embedding_dim"]]))
    inputs = {i.name: (i.type, i.shape[-1] if len(i.shape) == 3 else None) for i in session.get_inputs()}
    outputs = {o.name: (o.type, o.shape[-1] if len(o.shape) == 2 else None) for o in session.get_outputs()}
    if inputs != want or outputs != {k: ("tensor(float)", v) for k, v in want_out.items()}:
        raise BundleError(f"{path}: model.onnx has inputs {inputs} and outputs {outputs}, not a student graph "
                          f"for these hyperparameters; write it with `trainer export --into-bundle {path}`")


def load_default() -> StudentPlugin:
    """The embedded default student (TCGRU + multi-task, trained on EmoDB + RAVDESS)."""
    if not (DEFAULT_BUNDLE / WEIGHTS_FILE).exists():
        raise FileNotFoundError(f"the default student bundle is missing from {DEFAULT_BUNDLE}; "
                                "rebuild it with `make default-model`")
    return load_student(DEFAULT_BUNDLE, name=DEFAULT_MODEL)


def default_summary() -> ModelSummary:
    """`emolive models`' line of the default student, from its config (no graph session built)."""
    return bundle_summary(DEFAULT_BUNDLE)


def default_torch_summary() -> ModelSummary:
    """The same weights run by torch (`student-torch`), listed only where torch is installed."""
    require_package("torch", "student-torch")
    return bundle_summary(DEFAULT_BUNDLE)
