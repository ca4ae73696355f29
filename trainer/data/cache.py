"""Front-end features computed once per audio file and kept on disk.

The features come from `engine.features.compute`, the code the live engine runs, so training
sees exactly the live features. Entries are keyed by the front-end config's digest and the sha1
of the audio file's bytes: a changed config or a changed file can never serve stale features.
Entries are plain .npy arrays (read with allow_pickle=False), written atomically.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import soundfile as sf
import soxr
from tqdm import tqdm

from engine.features import FrontEndConfig, compute
from trainer.data.utterance import Utterance


def load_audio(data: bytes, sample_rate: int) -> np.ndarray:
    """Decode audio bytes to float32 mono at `sample_rate` (channels averaged, soxr resampling)."""
    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    mono = samples.mean(axis=1)
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate)
    return np.ascontiguousarray(mono, dtype=np.float32)


class FeatureCache:
    """Features of audio files under `root/<config digest>/<audio sha1>.npy`."""

    def __init__(self, root: str | Path, cfg: FrontEndConfig | None = None) -> None:
        self.cfg = cfg or FrontEndConfig()
        self.dir = Path(root) / self.cfg.digest()
        self.dir.mkdir(parents=True, exist_ok=True)
        # The config beside its entries lets a person see what a cache directory holds.
        (self.dir / "frontend.json").write_text(json.dumps(self.cfg.to_dict(), indent=2) + "\n")

    def features(self, audio_path: str | Path) -> np.ndarray:
        """[N, num_features] float32 for one file, computed on first use."""
        try:
            data = Path(audio_path).read_bytes()
        except OSError as err:
            raise ValueError(f"cannot read audio {audio_path}: {err.strerror}") from err
        entry = self.dir / f"{hashlib.sha1(data).hexdigest()}.npy"
        if entry.is_file():
            return np.load(entry, allow_pickle=False)
        try:
            feats = compute(load_audio(data, self.cfg.sample_rate), self.cfg)
        except (sf.SoundFileError, ValueError) as err:
            raise ValueError(f"cannot compute features of {audio_path}: {err}") from err
        tmp = entry.with_name(f"{entry.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, feats, allow_pickle=False)
        os.replace(tmp, entry)  # a crash mid-write never leaves a truncated entry
        return feats

    def features_for(self, utts: Iterable[Utterance], progress: bool = True) -> list[np.ndarray]:
        """Features of every utterance in order, with a progress bar."""
        utts = list(utts)
        return [self.features(u.path) for u in tqdm(utts, desc="features", unit="file", disable=not progress)]


def feature_stats(features: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std over all frames (float64 sums): the model's input normalisation."""
    count, total, squares = 0, 0.0, 0.0
    for f in features:
        f64 = f.astype(np.float64)
        count += len(f64)
        total = total + f64.sum(0)
        squares = squares + (f64**2).sum(0)
    if count == 0:
        raise ValueError("no frames to compute normalisation statistics from")
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    return mean.astype(np.float32), std.astype(np.float32)
