"""A numpy array as a source, so a program's own audio (any rate, any channel count) takes the live path.

The array goes through the same `ToMono16k` as files and devices: one conversion for every input.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from emolive.engine.sources.base import DEFAULT_BLOCK_SIZE, SAMPLE_RATE, AudioSource, AudioSourceError, ToMono16k


class ArraySource(AudioSource):
    """Samples shaped (frames,) or (frames, channels), like soundfile returns them, at `sample_rate` Hz."""

    def __init__(self, samples: np.ndarray, sample_rate: float, *, block_size: int = DEFAULT_BLOCK_SIZE) -> None:
        samples = np.asarray(samples)
        if samples.ndim not in (1, 2) or samples.size == 0:
            raise AudioSourceError(f"audio array of shape {samples.shape}: give (frames,) or (frames, channels) "
                                   "with at least one sample")
        if not np.issubdtype(samples.dtype, np.floating) and not np.issubdtype(samples.dtype, np.integer):
            raise AudioSourceError(f"audio array of dtype {samples.dtype}: give float or integer samples")
        if not sample_rate or sample_rate <= 0:
            raise AudioSourceError(f"sample rate {sample_rate!r}: give the array's rate in Hz (sample_rate=…)")
        super().__init__(f"array of {samples.shape[0]} frames at {sample_rate:g} Hz")
        self._samples = _as_float(samples)
        self._read_frames = max(1, round(block_size * sample_rate / SAMPLE_RATE))
        self._convert = ToMono16k(sample_rate)

    def _read_blocks(self) -> Iterator[np.ndarray]:
        n = len(self._samples)
        for start in range(0, n, self._read_frames):
            yield self._convert(self._samples[start:start + self._read_frames], last=start + self._read_frames >= n)

    def close(self) -> None:
        """Nothing to release: the array belongs to the caller."""


def _as_float(samples: np.ndarray) -> np.ndarray:
    """Integer PCM scaled to [-1, 1) by its type's range, as soundfile does when it reads int files."""
    if np.issubdtype(samples.dtype, np.integer):
        return samples.astype(np.float32) / np.float32(-np.iinfo(samples.dtype).min)
    return samples.astype(np.float32, copy=False)
