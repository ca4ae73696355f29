"""The light engine: the student runs on onnxruntime, agrees with torch, and `emolive` never imports torch.

Real processes for the import checks (sys.modules of a fresh interpreter is the only honest
witness), real speech for the agreement check.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from emolive.engine.features import compute
from emolive.engine.session import DEMO_CLIP
from emolive.plugins.student import DEFAULT_BUNDLE, TorchStudentPlugin, load_bundle, load_default
from tests.conftest import REPO

WINDOW, HOP = 150, 25  # 3 s windows every 0.5 s, as `emolive stream` cuts them
# float32 in both runtimes; ORT's MLAS and torch's GEMMs sum in different orders, a few ulp per op. The
# GRU's gates are contractions (< 1), so those errors do not grow over 150 steps: at most 4.3e-6 on
# the 1-7 scale over 122 EmoDB/RAVDESS windows here. 1e-4 leaves a 20x margin for any CPU's SIMD
# width or BLAS build (a different summation order moves each op by ulps, not by orders of magnitude).
AVD_TOLERANCE = 1e-4


def _python(code: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def _windows(features: np.ndarray) -> list[np.ndarray]:
    return [features[i:i + WINDOW] for i in range(0, len(features) - WINDOW + 1, HOP)]


@pytest.fixture(scope="module")
def plugins(one_torch_thread):
    model, meta = load_bundle(DEFAULT_BUNDLE)
    return load_default(), TorchStudentPlugin(model, meta, "student-torch", DEFAULT_BUNDLE)


def test_onnxruntime_and_torch_agree_on_real_speech(plugins, speech):
    light, reference = plugins
    windows = _windows(compute(speech))
    assert len(windows) >= 8
    none = [np.zeros(0, np.float32)] * len(windows)
    batched, ref = light.predict_batch(windows, none), reference.predict_batch(windows, none)
    one_by_one = [light.predict(w, none[0]) for w in windows]  # the live path: one window per call
    for got in (batched, one_by_one):
        avd = np.array([p.avd for p in got])
        ref_avd = np.array([p.avd for p in ref])
        assert np.abs(avd - ref_avd).max() <= AVD_TOLERANCE
        probs, ref_probs = np.array([p.class_probs for p in got]), np.array([p.class_probs for p in ref])
        np.testing.assert_allclose(probs, ref_probs, atol=AVD_TOLERANCE, rtol=0)
        top2 = np.sort(ref_probs, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 2 * AVD_TOLERANCE  # a near-tie may flip on rounding, on any runtime
        assert clear.sum() >= len(windows) - 1
        assert (probs.argmax(1) == ref_probs.argmax(1))[clear].all()
        np.testing.assert_allclose([p.embedding for p in got], [p.embedding for p in ref], atol=AVD_TOLERANCE, rtol=0)


def test_a_batch_of_unequal_lengths_equals_each_window_alone(plugins, speech):
    light, _ = plugins
    features = compute(speech)
    parts = [features[:WINDOW], features[40:40 + 60], features[:7]]  # a short stream's window is shorter
    together = light.predict_batch(parts, [np.zeros(0, np.float32)] * 3)
    for part, got in zip(parts, together):
        alone = light.predict(part, np.zeros(0, np.float32))
        np.testing.assert_allclose(got.avd, alone.avd, atol=1e-5, rtol=0)  # padding is masked, not averaged in


def test_emolive_stream_runs_without_importing_torch():
    code = ("import sys\nfrom emolive.engine.cli import main\n"
            f"code = main(['stream', '--source', {str(DEMO_CLIP)!r}, '--no-publish', '--json'])\n"
            "heavy = [m for m in ('torch', 'torchaudio') if m in sys.modules]\n"
            "print('IMPORTED', heavy, file=sys.stderr)\nsys.exit(code)")
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert "IMPORTED []" in result.stderr
    estimates = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(estimates) >= 5 and all(e["model"] == "student" for e in estimates)


def test_help_imports_no_engine_runtime():
    code = ("import sys\nfrom emolive.engine.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('IMPORTED', sorted(m for m in ('torch', 'numpy', 'numba', 'zmq', 'onnxruntime') if m in sys.modules))")
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert "IMPORTED []" in result.stdout and "stream" in result.stdout


def test_the_torch_path_stays_selectable():
    code = ("import sys\nfrom emolive.engine.plugin import load_model\n"
            "p = load_model('student-torch')\nprint(type(p).__name__, 'torch' in sys.modules)")
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["TorchStudentPlugin", "True"]


def test_the_shipped_graph_holds_its_weights_as_int8():
    """Every weight matrix of the int8 bundle (embedding, heads, time conv, the GRU's input and
    recurrent matrices of both layers) is int8 in model.onnx too; the loader's agreement check and
    the test above hold it to the float computation."""
    import onnx

    graph = onnx.load(str(DEFAULT_BUNDLE / "model.onnx"))
    dequantised = {n.output[0] for n in graph.graph.node if n.op_type == "DequantizeLinear"}
    int8 = [i for i in graph.graph.initializer if i.data_type == onnx.TensorProto.INT8]
    floats = [i for i in graph.graph.initializer if i.data_type == onnx.TensorProto.FLOAT and len(i.dims) >= 2]
    assert len(dequantised) == len(int8) == 8
    assert all(1 in i.dims for i in floats)  # left float: only the GRU's [1, 768] biases
    assert (DEFAULT_BUNDLE / "model.onnx").stat().st_size < 300_000


def test_only_weights_of_int8_form_become_int8():
    """A matrix that is int8 values times a scale per row (as a gate-reordered GRU matrix is, along
    its row axis) is stored as int8 and dequantises to the same values; random float weights stay."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from emolive.plugins.student.graph import int8_initializers

    rng = np.random.default_rng(0)
    scale = rng.uniform(0.001, 0.01, 24).astype(np.float32)
    q = rng.integers(-127, 128, (1, 24, 16)).astype(np.int8)
    q[0, np.arange(24), 0] = 127  # each row's largest value, as quantise_int8 makes it
    quantised = q.astype(np.float32) * scale[None, :, None]
    plain = rng.standard_normal((16, 8)).astype(np.float32)
    graph = helper.make_model(helper.make_graph(
        [helper.make_node("Add", ["a", "x"], ["y"]), helper.make_node("Identity", ["b"], ["z"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 24, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 24, 16]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, [16, 8])],
        [numpy_helper.from_array(quantised, "a"), numpy_helper.from_array(plain, "b")]),
        opset_imports=[helper.make_opsetid("", 17)])
    assert int8_initializers(graph) == 1
    kept = {i.name: i.data_type for i in graph.graph.initializer}
    assert kept == {"b": TensorProto.FLOAT, "a_int8": TensorProto.INT8, "a_scale": TensorProto.FLOAT}
    y, z = ort.InferenceSession(graph.SerializeToString()).run(None, {"x": np.zeros((1, 24, 16), np.float32)})
    np.testing.assert_allclose(y, quantised, rtol=0, atol=1e-6 * np.abs(quantised).max())
    np.testing.assert_array_equal(z, plain)
