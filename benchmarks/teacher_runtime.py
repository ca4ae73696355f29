"""Would a torch-free runtime serve the teacher better? Whisper base's encoder up to the shipped
teacher's layer 5, in PyTorch (plugins/teacher/whisper.py, what ships) against the same module
exported to ONNX and run on onnxruntime, one thread each, on a 3 s window of real speech.

Printed side by side from one run: time per window, peak resident memory of a process that loads
the encoder and embeds ten windows (each runtime in its own fresh process), the graph's size and
the largest difference of the layer-5 frames (beside their largest magnitude).
Run: .venv/bin/python benchmarks/teacher_runtime.py
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from _common import best_time, corpus_speech, print_table  # first: it sets one thread for every library

import numpy as np
import torch

from emolive.plugins.teacher.plugin import DEFAULT_STREAMS
from emolive.plugins.teacher.pretrained import PRETRAINED
from emolive.plugins.teacher.whisper import WhisperEncoder

LAYER = int(DEFAULT_STREAMS[0].split(":")[1])
# VmHWM, not ru_maxrss: a child's ru_maxrss starts at the forking parent's size, which here holds torch
PEAK = "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')) / 1024)"
RUN_TORCH = """
import numpy as np, torch
torch.set_num_threads(1)
from emolive.plugins.teacher.pretrained import PRETRAINED
from emolive.plugins.teacher.whisper import WhisperEncoder
encoder = WhisperEncoder(PRETRAINED["whisper-base"].weights.encoder_state()).eval()
mel = torch.from_numpy(np.load("{mel}"))
with torch.inference_mode():
    for _ in range(10): encoder(mel, upto={layer})
"""
RUN_ORT = """
import numpy as np, onnxruntime as ort
options = ort.SessionOptions(); options.intra_op_num_threads = options.inter_op_num_threads = 1
session = ort.InferenceSession("{graph}", options, providers=["CPUExecutionProvider"])
mel = np.load("{mel}")
for _ in range(10): session.run(None, {{"mel": mel}})
"""


class UpToLayer(torch.nn.Module):
    """The encoder's frames of one layer: what the teacher's head reads."""

    def __init__(self, encoder: WhisperEncoder, layer: int) -> None:
        super().__init__()
        self.encoder, self.layer = encoder, layer

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.encoder(mel, upto=self.layer)[-1]


def peak_mb(code: str) -> float:
    done = subprocess.run([sys.executable, "-c", code + "\n" + PEAK], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    import onnxruntime as ort

    torch.set_num_threads(1)
    encoder = WhisperEncoder(PRETRAINED["whisper-base"].weights.encoder_state()).eval()
    module = UpToLayer(encoder, LAYER)
    with torch.no_grad():  # not inference mode: the export traces the module with this tensor
        mel = encoder.log_mel(torch.from_numpy(corpus_speech("ravdess", 3.0).astype(np.float32)))[None]
        reference = module(mel).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        graph, mel_file = Path(tmp) / "encoder.onnx", Path(tmp) / "mel.npy"
        torch.onnx.export(module, (mel,), str(graph), input_names=["mel"], output_names=["frames"],
                          dynamic_axes={"mel": {2: "time"}, "frames": {1: "frames"}}, opset_version=17, dynamo=False)
        np.save(mel_file, mel.numpy())
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        frames = session.run(None, {"mel": mel.numpy()})[0]
        with torch.inference_mode():
            torch_s = best_time(lambda: module(mel), repeats=10)
        ort_s = best_time(lambda: session.run(None, {"mel": mel.numpy()}), repeats=10)
        torch_mb = peak_mb(RUN_TORCH.format(mel=mel_file, layer=LAYER))
        ort_mb = peak_mb(RUN_ORT.format(graph=graph, mel=mel_file))
        size = graph.stat().st_size
    print_table(["measure", "PyTorch (shipped)", "onnxruntime", "torch / onnxruntime"], [
        [f"ms per 3 s window, layers 1-{LAYER}", f"{torch_s * 1000:.1f}", f"{ort_s * 1000:.1f}", f"{torch_s / ort_s:.2f}"],
        ["peak RSS MB, load + 10 windows", f"{torch_mb:.0f}", f"{ort_mb:.0f}", f"{torch_mb / ort_mb:.2f}"],
        ["weights on disk MB", "145 (model.bin, all layers)", f"{size / 1e6:.0f} (graph)", ""],
        [f"largest |difference| of layer-{LAYER} frames", "0",
         f"{np.abs(frames - reference).max():.4f} (of {np.abs(reference).max():.0f})", ""],
    ])


if __name__ == "__main__":
    main()
