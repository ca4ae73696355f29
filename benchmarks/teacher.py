"""Teacher cost next to the student's: SSL embedding speed, 3 s window latency, model size.

Pretrained weights are not on this machine; random weights of the real architectures cost the
same compute. Prints three tables: embedding extraction (x real time) on real speech for a base
and (with --large, or on cuda) a large model, one thread and all threads; the latency of one 3 s
window for the default student and for teachers (HuBERT base, large, large + large 960h fused,
each + TCGRU); and parameters / bytes of the networks, with the student-to-teacher ratio the
paper quotes (19x smaller than the TCGRU on 1024-dim embeddings).
Run: .venv/bin/python benchmarks/teacher.py [--device cuda] [--seconds 20] [--large]
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from _common import best_time, corpus_speech, print_table

import numpy as np
import torch
import torchaudio

from emolive.engine.features import compute
from emolive.engine.plugin import ModelPlugin
from emolive.plugins.student import TCGRUModel, TorchStudentPlugin, load_default_torch
from emolive.plugins.teacher import PRETRAINED, SSLEncoder, TeacherPlugin, load_teacher_bundle, save_teacher_bundle
from emolive.plugins.teacher.plugin import torch_encoder_bytes
from emolive.plugins.teacher.pretrained import Stream

WINDOW = 48000  # 3 s at 16 kHz, the live window
TEACHERS = {"HuBERT base": ("hubert-base",), "HuBERT large": ("hubert-large",),
            "HuBERT large + large 960h": ("hubert-large", "hubert-large-960h")}


def random_encoder(name: str, device: str) -> SSLEncoder:
    spec = PRETRAINED[name]
    return SSLEncoder(torchaudio.models.wav2vec2_model(**spec.pipeline_bundle._params), spec.normalize_waveform, device)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def thread_settings(device: str) -> list[int]:
    return [0] if device == "cuda" else sorted({1, os.cpu_count() or 1})


def extraction_rows(names: list[str], speech: np.ndarray, device: str) -> list[list[str]]:
    """4 s utterances of real speech, last layer; x real time = audio seconds / wall seconds."""
    utts = [speech[i:i + 64000] for i in range(0, len(speech) - 63999, 64000)]
    seconds = sum(len(u) for u in utts) / 16000
    rows = []
    for name in names:
        enc = random_encoder(name, device)
        enc.embed(utts[:1], enc.num_layers)  # warm-up (allocator, kernels)
        for threads in thread_settings(device):
            if threads:
                torch.set_num_threads(threads)
            t = best_time(lambda: (enc.embed(utts, enc.num_layers), sync(device)), repeats=2)
            rows.append([f"{name} ({PRETRAINED[name].pipeline}, random)", device,
                         str(threads or "-"), f"{seconds:.0f} s", f"{t:.2f} s", f"{seconds / t:.2f}x"])
        del enc
    return rows


def teacher_plugin(label: str, names: tuple[str, ...], device: str, tmp: Path) -> TeacherPlugin:
    """A random TCGRU on the fused streams, saved and read back as a real teacher bundle."""
    streams = [Stream(n, PRETRAINED[n].num_layers) for n in names]
    head = TCGRUModel(sum(PRETRAINED[n].dim for n in names), n_classes=8)
    path = save_teacher_bundle(tmp / label.replace(" ", "_"), head, streams, [f"c{i}" for i in range(8)])
    model, meta, _ = load_teacher_bundle(path)
    encoders = {n: random_encoder(n, device) for n in names}
    return TeacherPlugin(TorchStudentPlugin(model, meta, label, path), [(encoders[s.model], s.layer) for s in streams],
                         label, torch_encoder_bytes(encoders.values()))


def latency_rows(plugins: dict[str, ModelPlugin], window: np.ndarray, device: str) -> list[list[str]]:
    features = compute(window)
    rows, base = [], {}
    for label, plugin in plugins.items():
        plugin.predict(features, window)  # warm-up
        for threads in thread_settings(device):
            if threads:
                torch.set_num_threads(threads)
            t = best_time(lambda: (plugin.predict(features, window), sync(device)), repeats=3)
            base.setdefault(threads, t)
            rows.append([label, plugin.device, str(threads or "-"), f"{t * 1000:.1f} ms",
                         f"{t / base[threads]:.0f}x", f"{3.0 / t:.1f}x"])
    return rows


def size_rows(student: TorchStudentPlugin) -> list[list[str]]:
    """Network parameters (fp32 bytes) by input width; the student's shipped bundle beside them."""
    count = lambda m: sum(p.numel() for p in m.parameters())
    small = count(student.model)
    rows = [[f"student TCGRU on MFB+F0 ({student.model.input_dim}-dim)", f"{small:,}", f"{small * 4 / 1e6:.3f} MB",
             "1x", f"shipped int8 bundle {student.size_bytes() / 1e6:.3f} MB"]]
    for width, what in ((768, "base"), (1024, "large"), (2048, "large + large 960h")):
        n = count(TCGRUModel(width, n_classes=student.model.n_classes))
        rows.append([f"teacher TCGRU on {what} ({width}-dim)", f"{n:,}", f"{n * 4 / 1e6:.3f} MB",
                     f"{n / small:.1f}x", f"{n * 4 / student.size_bytes():.1f}x the int8 student bundle"])
    for name in ("hubert-base", "hubert-large"):
        n = count(torchaudio.models.wav2vec2_model(**PRETRAINED[name].pipeline_bundle._params))
        rows.append([f"{name} SSL model (runs before the teacher)", f"{n:,}", f"{n * 4 / 1e6:.0f} MB",
                     f"{n / small:.0f}x", ""])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--seconds", type=float, default=20.0, help="speech for the extraction table")
    ap.add_argument("--large", action="store_true", help="also time a large model's extraction (always on cuda)")
    ap.add_argument("--corpus", default="emodb")
    args = ap.parse_args()
    torch.manual_seed(0)
    speech = corpus_speech(args.corpus, max(args.seconds, 4.0))
    names = ["hubert-base"] + (["hubert-large"] if args.large or args.device == "cuda" else [])
    torch.set_grad_enabled(False)

    print(f"Embedding extraction, last layer, 4 s utterances of {args.corpus} speech "
          f"({torch.cuda.get_device_name() if args.device == 'cuda' else f'{os.cpu_count()} CPU cores'})")
    print_table(["model", "device", "threads", "audio", "time", "x real time"],
                extraction_rows(names, speech, args.device))

    student = load_default_torch()
    with tempfile.TemporaryDirectory() as tmp:
        plugins: dict[str, ModelPlugin] = {"student (default bundle)": student}
        plugins |= {f"teacher: {label} + TCGRU": teacher_plugin(label, streams, args.device, Path(tmp))
                    for label, streams in TEACHERS.items()}
        print("\nOne 3 s window (plugin.predict; the student's features come from the live front end)")
        print_table(["model", "device", "threads", "latency", "vs student", "x real time"],
                    latency_rows(plugins, speech[:WINDOW], args.device))
    print("\nModel size (paper: the student is 19x smaller than the TCGRU on 1024-dim HuBERT large)")
    print_table(["network", "parameters", "fp32", "vs student", "note"], size_rows(student))


if __name__ == "__main__":
    main()
