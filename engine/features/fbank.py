"""Kaldi-compatible log mel filterbank energies, frame by frame in numba.

Same definition as Kaldi's `compute-fbank-feats` and `torchaudio.compliance.kaldi.fbank` with
dither 0: per frame remove the DC offset, pre-emphasise, apply the Povey window, zero-pad to a
power of two, take the power spectrum, apply triangular mel filters (mel = 1127 ln(1 + f/700))
and take the log with a floor at float32 epsilon, so silence gives finite values.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .config import FrontEndConfig
from .fft import make_fft_tables, power_spectrum

LOG_FLOOR = float(np.finfo(np.float32).eps)


def mel_scale(freq: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(freq, dtype=np.float64) / 700.0)


def mel_banks(cfg: FrontEndConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangular filters as (weights[bins, n_fft/2], first nonzero bin, end bin) per filter."""
    fb = cfg.fbank
    n_bins = fb.fft_size // 2
    nyquist = 0.5 * cfg.sample_rate
    high = fb.high_freq if fb.high_freq > 0 else nyquist + fb.high_freq
    if not 0 <= fb.low_freq < high <= nyquist:
        raise ValueError(f"mel range {fb.low_freq}..{high} Hz is not inside 0..{nyquist} Hz")
    mel_low, mel_high = mel_scale(fb.low_freq), mel_scale(high)
    delta = (mel_high - mel_low) / (fb.num_mel_bins + 1)
    b = np.arange(fb.num_mel_bins, dtype=np.float64)[:, None]
    left, center, right = mel_low + b * delta, mel_low + (b + 1) * delta, mel_low + (b + 2) * delta
    mel = mel_scale(np.arange(n_bins) * cfg.sample_rate / fb.fft_size)[None, :]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    weights = np.maximum(0.0, np.minimum(up, down))
    nonzero = weights > 0
    first = np.argmax(nonzero, axis=1).astype(np.int64)
    end = (n_bins - np.argmax(nonzero[:, ::-1], axis=1)).astype(np.int64)
    return weights, first, end


def povey_window(length: int, exponent: float) -> np.ndarray:
    n = np.arange(length, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / (length - 1))) ** exponent


class FbankKernel:
    """Tables for one configuration; `compute_into` fills rows of log mel energies."""

    def __init__(self, cfg: FrontEndConfig):
        self.cfg = cfg
        self.window = povey_window(cfg.frame_length, cfg.fbank.window_exponent)
        self.weights, self.first, self.end = mel_banks(cfg)
        self.tables = make_fft_tables(cfg.fbank.fft_size)
        n = cfg.fbank.fft_size
        self._frame = np.zeros(n)
        self._zr = np.zeros(n // 2)
        self._zi = np.zeros(n // 2)
        self._power = np.zeros(n // 2)

    def compute_into(self, samples: np.ndarray, n_frames: int, out: np.ndarray) -> None:
        """Frames k < n_frames of `samples` (frame k starts at k * shift) into out[k, :bins]."""
        t = self.tables
        fbank_frames(samples, n_frames, self.cfg.frame_shift, self.cfg.fbank.preemphasis,
                     self.window, self.weights, self.first, self.end,
                     t.bitrev, t.tw_re, t.tw_im, t.post_re, t.post_im,
                     self._frame, self._zr, self._zi, self._power, LOG_FLOOR, out)


@njit(cache=True)
def fbank_frames(x, n_frames, shift, preemph, window, weights, first, end,
                 bitrev, tw_re, tw_im, post_re, post_im, frame, zr, zi, power, floor, out):
    length = window.shape[0]
    n_mel = weights.shape[0]
    for f in range(n_frames):
        s = f * shift
        mean = 0.0
        for j in range(length):
            mean += x[s + j]
        mean /= length
        prev = x[s] - mean
        for j in range(length):
            cur = x[s + j] - mean
            frame[j] = (cur - preemph * prev) * window[j]
            prev = cur
        for j in range(length, frame.shape[0]):
            frame[j] = 0.0
        power_spectrum(frame, bitrev, tw_re, tw_im, post_re, post_im, zr, zi, power)
        for m in range(n_mel):
            e = 0.0
            for b in range(first[m], end[m]):
                e += weights[m, b] * power[b]
            out[f, m] = np.log(max(e, floor))


class OnlineFbank:
    """Streaming log mel energies: each frame is returned as soon as its 25 ms have arrived."""

    def __init__(self, cfg: FrontEndConfig):
        self.cfg = cfg
        self.kernel = FbankKernel(cfg)
        self.reset()

    def reset(self) -> None:
        self._raw = np.zeros(0, dtype=np.float32)  # starts at the next frame's first sample
        self.frames_emitted = 0

    def accept(self, x: np.ndarray) -> np.ndarray:
        raw = np.concatenate([self._raw, x]) if self._raw.size else np.asarray(x, np.float32)
        length, shift = self.cfg.frame_length, self.cfg.frame_shift
        n = 1 + (raw.size - length) // shift if raw.size >= length else 0
        out = np.empty((n, self.cfg.fbank.num_mel_bins), dtype=np.float32)
        if n:
            self.kernel.compute_into(raw, n, out)
        self._raw = raw[n * shift:]
        self.frames_emitted += n
        return out
