"""Pitch candidates, written for numba: decimation by 2, then NCCF lag candidates per frame.

The kernels take their geometry and scratch buffers as small named tuples (numba passes them
by value, their arrays by reference), so a call names what it passes instead of lining up a
dozen positional numbers. Inputs are finite: FrontEnd.push (and every AudioSource) checks once.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .kernels import kernel

DECIMATION = 2
FILTER_TAPS = 33


class NccfGeometry(NamedTuple):
    """Where frame k's correlation windows sit on the decimated signal, and the lags tried."""

    hop: int  # decimated samples between frames
    center0: int  # decimated index of frame 0's centre
    width: int  # correlation window, decimated samples
    lag_lo: int  # shortest period tried (max_f0)
    lag_hi: int  # longest period tried (min_f0)
    octave_cost: float  # per octave of lag, favours the shortest plausible period


class NccfScratch(NamedTuple):
    """Buffers one frame's arithmetic reuses; their positions never depend on the caller's buffer."""

    seg: np.ndarray  # float32[span]: the frame's span, mean removed (float32: twice the SIMD width)
    csum: np.ndarray  # float64[span + 1]: running sum of seg ** 2
    r: np.ndarray  # float64[lag_hi - lag_lo + 3]: NCCF for lags lag_lo - 1 .. lag_hi + 1


class Candidates(NamedTuple):
    """Per frame (rows): up to K lag candidates, strongest first, and the frame's peak level."""

    lag: np.ndarray  # float64[frames, K]: parabolically refined lags
    strength: np.ndarray  # float64[frames, K]: Praat's candidate strength (octave cost applied)
    count: np.ndarray  # int64[frames]: candidates found (<= K)
    peak: np.ndarray  # float64[frames]: largest |sample| in the frame's own window


def decimation_filter(sample_rate: int, analysis_rate: int) -> np.ndarray:
    """Blackman-windowed sinc low-pass (unity DC gain) applied before taking every 2nd sample."""
    if sample_rate != DECIMATION * analysis_rate:
        raise ValueError(f"pitch analysis rate must be sample_rate/{DECIMATION}, got {analysis_rate}")
    cutoff = 0.45 * analysis_rate / sample_rate  # cycles per input sample, below the new Nyquist
    n = np.arange(FILTER_TAPS) - (FILTER_TAPS - 1) / 2
    h = np.sinc(2 * cutoff * n) * np.blackman(FILTER_TAPS)
    return (h / h.sum()).astype(np.float64)


DECIMATION_TILE = 512  # outputs per pass over the taps: their sums and both phases stay in L1


@kernel()
def decimate_into(raw, raw_start, m0, m1, h, out):
    """out[m - m0] = sum_j h[j] x[2m + j - half] for m in [m0, m1); before the stream x is its first sample
    (the caller holds it: raw_start is 0 until these outputs are made). Zeros there made a DC offset a
    step at t = 0, whose self-similarity frame 0 took for a ~480 Hz pitch, held until the first voiced
    frame: 1 % of full scale moved a clip's valence by 3 points.

    Why the loops are turned around: a sum per output over 33 taps does not vectorise (its bound
    moves at the stream start, and each sum is a serial chain). Past the first `half` samples,
    tiles of outputs are summed tap by tap over the even and odd samples copied to contiguous
    buffers, so the innermost loop is a contiguous multiply-add LLVM vectorises across outputs.
    Each output still adds its taps in order j = 0, 1, ... from 0.0 (no fastmath), so the result
    is bit for bit the one-output-at-a-time sum, at ~6x the speed.
    """
    taps = h.shape[0]
    half = (taps - 1) // 2
    m_full = min(max(m0, (half + 1) // 2), m1)  # first output whose taps all lie in the stream
    for m in range(m0, m_full):
        acc = 0.0
        base = 2 * m - half - raw_start
        for j in range(taps):  # taps reaching before the stream see its first sample
            acc += h[j] * raw[max(base + j, -raw_start)]
        out[m - m0] = acc
    even = np.empty(DECIMATION_TILE + (taps - 1) // 2)  # x[2m - half + 2i], x[2m - half + 2i + 1]
    odd = np.empty(DECIMATION_TILE + (taps - 2) // 2)
    for t0 in range(m_full, m1, DECIMATION_TILE):
        n = min(m1, t0 + DECIMATION_TILE) - t0
        s = 2 * t0 - half - raw_start
        for i in range(n + (taps - 1) // 2):
            even[i] = raw[s + 2 * i]
        for i in range(n + (taps - 2) // 2):
            odd[i] = raw[s + 2 * i + 1]
        acc = out[t0 - m0:t0 - m0 + n]
        acc[:] = 0.0
        for j in range(taps):
            hj = h[j]
            phase = even[j // 2:j // 2 + n] if j % 2 == 0 else odd[j // 2:j // 2 + n]
            for i in range(n):
                acc[i] += hj * phase[i]


@kernel(fastmath=True)
def _nccf(seg, csum, c, width, lag_lo, lag_hi, r):
    """r[lag - lag_lo + 1] for lag in [lag_lo - 1, lag_hi + 1], windows centred on c."""
    for lag in range(lag_lo - 1, lag_hi + 2):
        a = c - width // 2 - lag // 2
        b = a + lag
        x = seg[a:a + width]  # slices: non-negative loop indices let LLVM vectorise
        y = seg[b:b + width]
        cross = np.float32(0.0)
        for n in range(width):
            cross += x[n] * y[n]
        e = (csum[a + width] - csum[a]) * (csum[b + width] - csum[b])
        r[lag - lag_lo + 1] = cross / math.sqrt(e) if e > 1e-20 else 0.0


@kernel()
def frame_candidates(dec, dec_start, k0, k1, geo, scratch, out):
    """Candidates (NccfGeometry `geo`) for frames [k0, k1) of the decimated `dec` into row k - k0 of `out`.

    Each frame's span is copied to `scratch.seg` (fixed position) before the arithmetic, so the
    result never depends on where the frame sat in the caller's buffer.
    """
    seg, csum, r = scratch.seg, scratch.csum, scratch.r
    width, lag_lo, lag_hi = geo.width, geo.lag_lo, geo.lag_hi
    span = seg.shape[0]
    reach = width // 2 + (lag_hi + 1) // 2 + 1
    for k in range(k0, k1):
        c_abs = geo.center0 + geo.hop * k
        s0 = c_abs - reach
        mean = 0.0
        for i in range(span):
            v = dec[s0 + i - dec_start]  # the caller's buffer starts `reach` before the stream
            seg[i] = v
            mean += v
        mean /= span
        peak = 0.0
        csum[0] = 0.0
        for i in range(span):
            seg[i] -= mean
            csum[i + 1] = csum[i] + seg[i] * seg[i]
        for i in range(reach - width // 2, reach + width // 2):
            peak = max(peak, abs(seg[i]))
        _nccf(seg, csum, reach, width, lag_lo, lag_hi, r)
        row = k - k0
        out.peak[row] = peak
        n = 0
        for lag in range(lag_lo, lag_hi + 1):
            i = lag - lag_lo + 1
            if not (r[i] > r[i - 1] and r[i] >= r[i + 1] and r[i] > 0.0):
                continue
            den = r[i - 1] - 2.0 * r[i] + r[i + 1]
            shift = 0.5 * (r[i - 1] - r[i + 1]) / den if den < 0.0 else 0.0
            peak_r = min(1.0, r[i] - 0.25 * (r[i - 1] - r[i + 1]) * shift)
            fine = lag + shift
            strength = peak_r - geo.octave_cost * math.log2(fine / lag_lo)
            n = _insert(out, row, n, strength, fine)
        out.count[row] = n


@kernel()
def _insert(out, row, n, strength, fine):
    """Insert (strength, lag) into row's top-K list of n entries, strongest first; the new count."""
    max_c = out.lag.shape[1]
    pos = n if n < max_c else max_c
    while pos > 0 and out.strength[row, pos - 1] < strength:
        if pos < max_c:
            out.strength[row, pos] = out.strength[row, pos - 1]
            out.lag[row, pos] = out.lag[row, pos - 1]
        pos -= 1
    if pos < max_c:
        out.strength[row, pos] = strength
        out.lag[row, pos] = fine
    return min(n + 1, max_c)
