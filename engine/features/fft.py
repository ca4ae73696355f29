"""Power spectrum of a real frame with a radix-2 FFT, written for numba.

numba cannot call numpy.fft inside compiled code, and the per-frame loop must stay compiled,
so this is the textbook real-FFT-through-half-size-complex-FFT, with tables computed once.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit


class FFTTables(NamedTuple):
    """Precomputed bit reversal and twiddles for a real FFT of size n (n a power of two)."""

    bitrev: np.ndarray  # int64[n/2]
    tw_re: np.ndarray  # float64[n/4]: cos(2 pi k / (n/2))
    tw_im: np.ndarray  # float64[n/4]: -sin(...)
    post_re: np.ndarray  # float64[n/2]: cos(2 pi k / n)
    post_im: np.ndarray  # float64[n/2]: -sin(...)


def make_fft_tables(n: int) -> FFTTables:
    if n < 4 or n & (n - 1):
        raise ValueError(f"FFT size must be a power of two >= 4, got {n}")
    m = n // 2
    bits = m.bit_length() - 1
    idx = np.arange(m)
    bitrev = np.zeros(m, dtype=np.int64)
    for b in range(bits):
        bitrev |= ((idx >> b) & 1) << (bits - 1 - b)
    k = np.arange(m // 2)
    kk = np.arange(m)
    return FFTTables(
        bitrev,
        np.cos(2 * np.pi * k / m),
        -np.sin(2 * np.pi * k / m),
        np.cos(2 * np.pi * kk / n),
        -np.sin(2 * np.pi * kk / n),
    )


@njit(cache=True)
def power_spectrum(x, bitrev, tw_re, tw_im, post_re, post_im, zr, zi, out):
    """|rfft(x)|^2 for bins 0..n/2-1 (the Nyquist bin is not needed by the mel banks).

    x: float64[n]; zr, zi: float64[n/2] scratch; out: float64[n/2].
    """
    m = zr.shape[0]
    for i in range(m):
        j = bitrev[i]
        zr[j] = x[2 * i]
        zi[j] = x[2 * i + 1]
    size = 2
    while size <= m:
        half = size // 2
        step = m // size
        for start in range(0, m, size):
            for k in range(half):
                wr = tw_re[k * step]
                wi = tw_im[k * step]
                a = start + k
                b = a + half
                tr = wr * zr[b] - wi * zi[b]
                ti = wr * zi[b] + wi * zr[b]
                zr[b] = zr[a] - tr
                zi[b] = zi[a] - ti
                zr[a] += tr
                zi[a] += ti
        size *= 2
    for k in range(m):
        nk = (m - k) % m
        er = 0.5 * (zr[k] + zr[nk])
        ei = 0.5 * (zi[k] - zi[nk])
        orr = 0.5 * (zi[k] + zi[nk])
        oi = -0.5 * (zr[k] - zr[nk])
        xr = er + post_re[k] * orr - post_im[k] * oi
        xi = ei + post_re[k] * oi + post_im[k] * orr
        out[k] = xr * xr + xi * xi
