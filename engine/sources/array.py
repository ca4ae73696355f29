"""A numpy array as a source, so a program's own audio (any rate, any channel count) takes the live path.

The array goes through the same `ToMono16k` as files and devices: one conversion for every input.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from emolive.engine.sources.base import (DEFAULT_BLOCK_SIZE, SAMPLE_RATE, AudioSource, AudioSourceError, ToMono16k,
                                         narrow_to_float32, out_of_range)


MAX_CHANNELS = 32  # a 2-D array's axis this short or shorter, and shorter than the other, holds channels
MAX_INT_BYTES = 4  # int32: the widest integer samples an audio format stores
INT16_PEAK = 32768  # the largest 16-bit sample

log = logging.getLogger(__name__)


class ArraySource(AudioSource):
    """Samples shaped (frames,), (frames, channels) as soundfile gives them, or (channels, frames) as
    librosa and torchaudio do (the shorter axis, of at most 32, is channels), at `sample_rate` Hz.
    Any array-like works: a list, a torch tensor (copied to the CPU). Samples are checked before any
    work: a value beyond float32's range is refused, as is an array whose time axis is unclear."""

    at_hand = True

    def __init__(self, samples: object, sample_rate: float, *, block_size: int = DEFAULT_BLOCK_SIZE,
                 channels: tuple[int, ...] = ()) -> None:
        samples = as_array(samples)
        if samples.ndim not in (1, 2) or samples.size == 0:
            raise AudioSourceError(f"audio array of shape {samples.shape}: give (frames,), (frames, channels) or "
                                   "(channels, frames) with at least one sample")
        samples = _frames_first(samples)
        if samples.dtype == np.bool_ or not (np.issubdtype(samples.dtype, np.floating)
                                             or np.issubdtype(samples.dtype, np.integer)):
            raise AudioSourceError(f"audio array of dtype {samples.dtype}: give float or integer samples")
        self._convert = ToMono16k(sample_rate, "audio array", channels)  # checks the rate
        super().__init__(f"array of {samples.shape[0]} frames at {self._convert.rate:g} Hz")
        self._samples = _as_float(samples, self._convert.rate)
        self._read_frames = max(1, round(block_size * self._convert.rate / SAMPLE_RATE))
        self.input_rate = self._convert.rate

    def _read_blocks(self) -> Iterator[np.ndarray]:
        n = len(self._samples)
        for start in range(0, n, self._read_frames):
            yield self._convert(self._samples[start:start + self._read_frames], last=start + self._read_frames >= n)

    def close(self) -> None:
        """Nothing to release: the array belongs to the caller."""


def as_array(samples: object) -> np.ndarray:
    """A numpy view or copy of an array-like (torch tensors through their CPU copy)."""
    if hasattr(samples, "detach") and hasattr(samples, "cpu"):  # a torch tensor, without importing torch
        tensor = samples.detach().cpu()
        if str(tensor.dtype) == "torch.bfloat16":  # numpy has no bfloat16; float32 holds its every value
            tensor = tensor.float()
        samples = tensor.numpy()
    try:
        return np.asarray(samples)
    except (TypeError, ValueError) as exc:
        raise AudioSourceError(f"audio of type {type(samples).__name__} is not an array of samples ({exc})") from None


def _frames_first(samples: np.ndarray) -> np.ndarray:
    """A 2-D array as (frames, channels): the shorter axis is channels if it has at most MAX_CHANNELS.
    A first axis longer than that but shorter than the second is refused rather than read as frames:
    more channels than frames is no recording, and its empty result would say nothing."""
    if samples.ndim != 2 or samples.shape[0] >= samples.shape[1]:
        return samples
    if samples.shape[0] > MAX_CHANNELS:
        rows, columns = samples.shape
        raise AudioSourceError(f"audio array of shape {samples.shape}: neither {rows} channels (channels first "
                               f"allows at most {MAX_CHANNELS}) nor {rows} frames of {columns} channels; give "
                               "(frames, channels), e.g. samples.T")
    return samples.T


def _as_float(samples: np.ndarray, rate: float) -> np.ndarray:
    """Integer PCM scaled to [-1, 1) by its type's range, as soundfile does when it reads int files;
    unsigned PCM (8-bit WAV's format) is offset binary: its middle value is silence. Floats at `rate`
    Hz become float32, a value beyond its range an error naming when. No audio format stores 64-bit
    integers, whose range would make any speech silence: they are refused (numpy makes them of a
    list of Python ints). Samples scaled for another type are warned about (`check_scale`)."""
    if np.issubdtype(samples.dtype, np.integer) and samples.dtype.itemsize > MAX_INT_BYTES:
        raise AudioSourceError(f"audio array of {samples.dtype} (a list of Python ints is one): no audio format "
                               "has 64-bit samples; give int16 (16-bit PCM: np.asarray(samples, np.int16)) or int32, "
                               "or floats in [-1, 1]")
    check_scale(samples)
    if np.issubdtype(samples.dtype, np.unsignedinteger):
        half = np.float32(np.iinfo(samples.dtype).max // 2 + 1)
        return (samples.astype(np.float32) - half) / half
    if np.issubdtype(samples.dtype, np.integer):
        return samples.astype(np.float32) / np.float32(-np.iinfo(samples.dtype).min)
    narrowed, beyond = narrow_to_float32(samples)
    if beyond is not None:
        raise out_of_range("audio array", beyond / rate)
    return narrowed


def check_scale(samples: np.ndarray) -> None:
    """Warn where int32 samples plainly hold 16-bit values: they read as -96 dB or quieter. They are
    taken as given (a recording may be that quiet), but the estimates of so quiet a voice move (the
    front end hears level), so the caller hears of it. Floats scaled as 16-bit values are warned
    about where every source's are (AudioSource.blocks)."""
    if samples.dtype == np.int32 and 0 < (peak := np.abs(samples).max()) <= INT16_PEAK:
        log.warning("audio array: its int32 samples peak at %d of 2147483648 (-96 dBFS or below): if they are "
                    "16-bit samples, give them as int16", peak)