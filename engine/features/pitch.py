"""Online pitch and voicing: NCCF candidates, fixed-lag Viterbi, held log-F0, delta, voicing probability.

The design follows Kaldi's online pitch (normalised cross-correlation on a decimated signal,
a Viterbi path over lag candidates, log-pitch + delta + POV outputs) with Praat's candidate
strengths and path costs (octave cost, octave-jump cost, voiced/unvoiced cost, silence
threshold), because Praat is the reference users compare against.

Streaming: the Viterbi decision for frame t is traced back from the best state at frame
t + lag_frames, so outputs are final after a bounded delay and any chunking of the input gives
the same frames as one offline call.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .config import FrontEndConfig

DECIMATION = 2
FILTER_TAPS = 33


def decimation_filter(sample_rate: int, analysis_rate: int) -> np.ndarray:
    """Blackman-windowed sinc low-pass (unity DC gain) applied before taking every 2nd sample."""
    if sample_rate != DECIMATION * analysis_rate:
        raise ValueError(f"pitch analysis rate must be sample_rate/{DECIMATION}, got {analysis_rate}")
    cutoff = 0.45 * analysis_rate / sample_rate  # cycles per input sample, below the new Nyquist
    n = np.arange(FILTER_TAPS) - (FILTER_TAPS - 1) / 2
    h = np.sinc(2 * cutoff * n) * np.blackman(FILTER_TAPS)
    return (h / h.sum()).astype(np.float64)


@njit(cache=True)
def decimate_into(raw, raw_start, m0, m1, h, out):
    """out[m - m0] = sum_j h[j] x[2m + j - half] for m in [m0, m1); x is zero before the stream."""
    half = (h.shape[0] - 1) // 2
    for m in range(m0, m1):
        acc = 0.0
        base = 2 * m - half - raw_start
        j0 = max(0, -(base + raw_start))  # taps reaching before the stream see zeros
        for j in range(j0, h.shape[0]):
            acc += h[j] * raw[base + j]
        out[m - m0] = acc


@njit(cache=True, fastmath=True)
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


@njit(cache=True)
def frame_candidates(dec, dec_start, k0, k1, hop, center0, width, lag_lo, lag_hi, octave_cost,
                     seg, csum, r, cand_lag, cand_str, n_cand, local_peak):
    """Lag candidates (parabolically refined NCCF maxima) and peak level for frames [k0, k1).

    Each frame's span is copied to `seg` (fixed position) before the arithmetic, so the result
    never depends on where the frame sat in the caller's buffer.
    """
    span = seg.shape[0]
    reach = width // 2 + (lag_hi + 1) // 2 + 1
    max_c = cand_lag.shape[1]
    for k in range(k0, k1):
        c_abs = center0 + hop * k
        s0 = c_abs - reach
        mean = 0.0
        for i in range(span):
            j = s0 + i
            v = dec[j - dec_start] if j >= 0 else 0.0
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
        local_peak[row] = peak
        n = 0
        for lag in range(lag_lo, lag_hi + 1):
            i = lag - lag_lo + 1
            if not (r[i] > r[i - 1] and r[i] >= r[i + 1] and r[i] > 0.0):
                continue
            den = r[i - 1] - 2.0 * r[i] + r[i + 1]
            shift = 0.5 * (r[i - 1] - r[i + 1]) / den if den < 0.0 else 0.0
            peak_r = min(1.0, r[i] - 0.25 * (r[i - 1] - r[i + 1]) * shift)
            fine = lag + shift
            strength = peak_r - octave_cost * math.log2(fine / lag_lo)
            # insertion into the top-max_c list, strongest first
            pos = n if n < max_c else max_c
            while pos > 0 and cand_str[row, pos - 1] < strength:
                if pos < max_c:
                    cand_str[row, pos] = cand_str[row, pos - 1]
                    cand_lag[row, pos] = cand_lag[row, pos - 1]
                pos -= 1
            if pos < max_c:
                cand_str[row, pos] = strength
                cand_lag[row, pos] = fine
                if n < max_c:
                    n += 1
        n_cand[row] = n


@njit(cache=True)
def viterbi_advance(cand_lag, cand_str, n_cand, local_peak, first_frame, finish,
                    delta, ring_lag, ring_str, ring_bp, ring_u, ring_n, state,
                    lag_frames, jump_cost, vu_cost, voicing_thr, silence_thr, peak_decay,
                    floor_rise, noise_margin_db, pov_slope, out_lag, out_pov):
    """Forward Viterbi over new frames; writes decided frames (lag 0 = unvoiced) to out_*.

    State slot 0 is "unvoiced"; slots 1..K are candidates. state = [running peak, frames seen,
    frames decided, noise floor]. Returns the number of frames written.

    A frame is pushed towards unvoiced when it is quiet relative to the running peak (Praat's
    silence threshold, made causal) or close to the tracked noise floor (minimum statistics),
    which catches periodic background noise before the first loud sound of a stream.
    """
    ring = ring_lag.shape[0]
    slots = ring_lag.shape[1]
    new_delta = np.empty(slots)
    n_out = 0
    for row in range(cand_lag.shape[0]):
        t = first_frame + row
        peak = max(local_peak[row], state[0] * peak_decay)
        state[0] = peak
        ratio = local_peak[row] / peak if peak > 0.0 else 0.0
        u = voicing_thr + max(0.0, 2.0 - ratio / (silence_thr / (1.0 + voicing_thr)))
        floor = min(local_peak[row], state[3] * floor_rise)
        state[3] = floor
        if local_peak[row] <= 0.0:
            u += 2.0
        elif floor > 0.0:
            snr_db = 20.0 * math.log10(local_peak[row] / floor)
            u += max(0.0, 2.0 * (1.0 - snr_db / noise_margin_db))
        slot = t % ring
        ring_u[slot] = u
        ring_n[slot] = n_cand[row]
        ring_lag[slot, 0] = 0.0
        ring_str[slot, 0] = u
        for j in range(1, slots):
            if j <= n_cand[row]:
                ring_lag[slot, j] = cand_lag[row, j - 1]
                ring_str[slot, j] = cand_str[row, j - 1]
            else:
                ring_lag[slot, j] = 0.0
                ring_str[slot, j] = -1e30
        if t == 0:
            for j in range(slots):
                delta[j] = ring_str[slot, j]
                ring_bp[slot, j] = 0
        else:
            prev = (t - 1) % ring
            for j in range(slots):
                best = -1e300
                arg = 0
                for i in range(slots):
                    if delta[i] < -1e29:
                        continue
                    li = ring_lag[prev, i]
                    lj = ring_lag[slot, j]
                    if li > 0.0 and lj > 0.0:
                        cost = jump_cost * abs(math.log2(li / lj))
                    elif li > 0.0 or lj > 0.0:
                        cost = vu_cost
                    else:
                        cost = 0.0
                    v = delta[i] - cost
                    if v > best:
                        best = v
                        arg = i
                new_delta[j] = best + ring_str[slot, j]
                ring_bp[slot, j] = arg
            top = -1e300
            for j in range(slots):
                top = max(top, new_delta[j])
            for j in range(slots):
                delta[j] = new_delta[j] - top if new_delta[j] > -1e29 else -1e30
        state[1] = t + 1
        if t - lag_frames >= state[2]:
            n_out = _trace_out(delta, ring_lag, ring_str, ring_bp, ring_u, ring_n, t,
                               int(state[2]), int(state[2]) + 1, pov_slope, out_lag, out_pov, n_out)
            state[2] += 1
    if finish and state[1] > state[2]:
        last = int(state[1]) - 1
        n_out = _trace_out(delta, ring_lag, ring_str, ring_bp, ring_u, ring_n, last,
                           int(state[2]), last + 1, pov_slope, out_lag, out_pov, n_out)
        state[2] = state[1]
    return n_out


@njit(cache=True)
def _trace_out(delta, ring_lag, ring_str, ring_bp, ring_u, ring_n, t_end, f0, f1,
               pov_slope, out_lag, out_pov, n_out):
    """Trace back from the best state at t_end and write frames [f0, f1) in order."""
    ring = ring_lag.shape[0]
    j = 0
    for i in range(delta.shape[0]):
        if delta[i] > delta[j]:
            j = i
    picks = np.empty(t_end - f0 + 1, dtype=np.int64)
    for t in range(t_end, f0 - 1, -1):
        picks[t - f0] = j
        j = ring_bp[t % ring, j]
    for t in range(f0, f1):
        slot = t % ring
        j = picks[t - f0]
        best_voiced = ring_str[slot, 1] if ring_n[slot] > 0 else -1.0
        pov = 1.0 / (1.0 + math.exp(-pov_slope * (best_voiced - ring_u[slot])))
        # the soft score is pinned to the path's decision so that pov > 0.5 means voiced
        if j > 0:
            pov = max(pov, 0.51)
        else:
            pov = min(pov, 0.49)
        out_lag[n_out] = ring_lag[slot, j]
        out_pov[n_out] = pov
        n_out += 1
    return n_out


@njit(cache=True)
def hold_and_delta(lag, pov, rate, finish, left, pending, state):
    """Rows (log F0 held through unvoiced frames, delta, pov) whose delta context is complete.

    The delta is Kaldi's: sum_j j (x[t+j] - x[t-j]) / (2 sum_j j^2) over j = 1..w, with the
    first frame of the stream replicated on the left and, at the end, the last on the right.
    state = [held log F0, valid entries in `left`, rows in `pending`].
    """
    w = left.shape[0]
    held = state[0]
    n_left = int(state[1])
    n_pend = int(state[2])
    total = n_pend + lag.shape[0]
    vals = np.empty(total)
    povs = np.empty(total)
    for i in range(n_pend):
        vals[i] = pending[i, 0]
        povs[i] = pending[i, 1]
    for i in range(lag.shape[0]):
        if lag[i] > 0.0:
            held = math.log(rate / lag[i])
        vals[n_pend + i] = held
        povs[n_pend + i] = pov[i]
    n_emit = total if finish else max(0, total - w)
    norm = 0.0
    for j in range(1, w + 1):
        norm += 2.0 * j * j
    out = np.empty((n_emit, 3), dtype=np.float32)
    for i in range(n_emit):
        acc = 0.0
        for j in range(1, w + 1):
            right = vals[i + j] if i + j < total else vals[total - 1]
            k = i - j
            if k >= 0:
                before = vals[k]
            elif n_left + k >= 0:
                before = left[w + k]
            elif n_left > 0:
                before = left[w - n_left]
            else:
                before = vals[0]
            acc += j * (right - before)
        out[i, 0] = vals[i]
        out[i, 1] = acc / norm
        out[i, 2] = povs[i]
    keep = min(w, n_left + n_emit)  # the left context slides over what was just emitted
    merged = np.empty(n_left + n_emit)
    merged[:n_left] = left[w - n_left:]
    merged[n_left:] = vals[:n_emit]
    left[w - keep:] = merged[n_left + n_emit - keep:]
    for i in range(n_emit, total):
        pending[i - n_emit, 0] = vals[i]
        pending[i - n_emit, 1] = povs[i]
    state[0] = held
    state[1] = keep
    state[2] = total - n_emit
    return out


class OnlinePitch:
    """Streaming pitch features: accept waveform, get finished rows of (log F0, delta, pov).

    Look-ahead: a frame's row is final once the NCCF span of frame k + lag + delta_window has
    arrived; `lookahead_samples` gives the exact figure past the frame's own window end.
    """

    def __init__(self, cfg: FrontEndConfig):
        p = cfg.pitch
        self.cfg = cfg
        self.h = decimation_filter(cfg.sample_rate, p.analysis_rate)
        self.hop = cfg.frame_shift // DECIMATION
        self.center0 = cfg.frame_length // (2 * DECIMATION)
        self.width = int(round(p.window_ms * p.analysis_rate / 1000))
        self.lag_lo = int(math.floor(p.analysis_rate / p.max_f0))
        self.lag_hi = int(math.ceil(p.analysis_rate / p.min_f0))
        self.reach = self.width // 2 + (self.lag_hi + 1) // 2 + 1
        span = 2 * self.reach + 1
        self._seg = np.zeros(span, dtype=np.float32)  # float32: twice the SIMD width in the NCCF
        self._csum = np.zeros(span + 1)
        self._r = np.zeros(self.lag_hi - self.lag_lo + 3)
        k = p.max_candidates
        ring = p.viterbi_lag_frames + 2
        self._delta = np.zeros(k + 1)
        self._ring_lag = np.zeros((ring, k + 1))
        self._ring_str = np.zeros((ring, k + 1))
        self._ring_bp = np.zeros((ring, k + 1), dtype=np.int64)
        self._ring_u = np.zeros(ring)
        self._ring_n = np.zeros(ring, dtype=np.int64)
        hop_s = cfg.frame_shift / cfg.sample_rate
        self._costs = (p.octave_jump_cost * 0.01 / hop_s, p.voiced_unvoiced_cost * 0.01 / hop_s)
        self._peak_decay = p.peak_decay_per_s ** hop_s
        self._floor_rise = 10 ** (p.noise_floor_rise_db_per_s * hop_s / 20)
        self.reset()

    @property
    def lookahead_samples(self) -> int:
        """Input samples needed past the end of frame k's 25 ms window before row k is final."""
        p = self.cfg.pitch
        last_needed = DECIMATION * (self.center0 + self.reach) + (FILTER_TAPS - 1) // 2 + 1
        frames = p.viterbi_lag_frames + p.delta_window
        return frames * self.cfg.frame_shift + last_needed - self.cfg.frame_length

    def reset(self) -> None:
        self._raw = np.zeros(0, dtype=np.float32)
        self._raw_start = 0  # absolute index of self._raw[0]
        self._dec = np.zeros(0)
        self._dec_start = -self.reach  # decimated samples before 0 are zeros
        self._n_frames = 0  # NCCF frames computed
        self._state = np.array([0.0, 0.0, 0.0, 10 ** (self.cfg.pitch.initial_noise_floor_dbfs / 20)])
        w = self.cfg.pitch.delta_window
        self._left = np.zeros(w)  # last emitted log-F0 values: the delta's left context
        self._pending = np.zeros((w, 2))  # decided (log F0, pov) rows awaiting right context
        self._post_state = np.array([math.log(self.cfg.pitch.initial_f0), 0.0, 0.0])

    def accept(self, x: np.ndarray) -> np.ndarray:
        """Consume samples; return the rows [n, 3] that became final."""
        self._raw = np.concatenate([self._raw, x]) if self._raw.size else np.asarray(x, np.float32)
        n_avail = self._raw_start + self._raw.size
        return self._advance(n_avail, n_frames_total=None)

    def finish(self, n_frames_total: int) -> np.ndarray:
        """End of input: the remaining rows up to n_frames_total (zeros past the signal end)."""
        n_avail = self._raw_start + self._raw.size
        need = DECIMATION * (self.center0 + self.hop * max(n_frames_total - 1, 0) + self.reach + 1) + FILTER_TAPS
        pad = max(0, need - n_avail)
        self._raw = np.concatenate([self._raw, np.zeros(pad, np.float32)])
        rows = self._advance(n_avail + pad, n_frames_total=n_frames_total)
        self.reset()
        return rows

    def _advance(self, n_avail: int, n_frames_total: int | None) -> np.ndarray:
        half = (FILTER_TAPS - 1) // 2
        dec_end = self._dec_start + self._dec.size
        new_end = (n_avail - half - 1) // DECIMATION + 1  # decimated samples computable
        if new_end > dec_end:
            fresh = np.empty(new_end - dec_end)
            decimate_into(self._raw, self._raw_start, max(dec_end, 0), new_end, self.h,
                          fresh[max(0, -dec_end):])
            fresh[: max(0, -dec_end)] = 0.0
            self._dec = np.concatenate([self._dec, fresh])
        # NCCF frames whose whole span is available (and, at the end, only real frames)
        avail = (self._dec_start + self._dec.size - 1 - self.reach - self.center0) // self.hop + 1
        if n_frames_total is not None:
            avail = n_frames_total
        k0, k1 = self._n_frames, max(self._n_frames, avail)
        lag, pov = self._decide(k0, k1, finish=n_frames_total is not None)
        self._n_frames = k1
        self._trim()
        return self._post(lag, pov, finish=n_frames_total is not None)

    def _decide(self, k0: int, k1: int, finish: bool) -> tuple[np.ndarray, np.ndarray]:
        """Candidates for frames [k0, k1), then the Viterbi; returns decided (lag, pov) rows."""
        p = self.cfg.pitch
        n = k1 - k0
        k = p.max_candidates
        lag = np.zeros((n, k))
        strength = np.zeros((n, k))
        n_cand = np.zeros(n, dtype=np.int64)
        peak = np.zeros(n)
        frame_candidates(self._dec, self._dec_start, k0, k1, self.hop, self.center0, self.width,
                         self.lag_lo, self.lag_hi, p.octave_cost, self._seg, self._csum, self._r,
                         lag, strength, n_cand, peak)
        out_lag = np.zeros(n + p.viterbi_lag_frames + 1)
        out_pov = np.zeros_like(out_lag)
        m = viterbi_advance(lag, strength, n_cand, peak, k0, finish, self._delta, self._ring_lag,
                            self._ring_str, self._ring_bp, self._ring_u, self._ring_n, self._state,
                            p.viterbi_lag_frames, self._costs[0], self._costs[1],
                            p.voicing_threshold, p.silence_threshold, self._peak_decay,
                            self._floor_rise, p.noise_margin_db, p.pov_slope, out_lag, out_pov)
        return out_lag[:m], out_pov[:m]

    def _trim(self) -> None:
        """Drop samples no future frame can reach (bounded memory, as Kaldi's remainder buffer)."""
        keep_dec = self.center0 + self.hop * self._n_frames - self.reach
        drop = min(max(0, keep_dec - self._dec_start), self._dec.size)
        self._dec = self._dec[drop:]
        self._dec_start += drop
        half = (FILTER_TAPS - 1) // 2
        keep_raw = DECIMATION * (self._dec_start + self._dec.size) - half
        drop = min(max(0, keep_raw - self._raw_start), self._raw.size)
        self._raw = self._raw[drop:]
        self._raw_start += drop

    def _post(self, lag: np.ndarray, pov: np.ndarray, finish: bool) -> np.ndarray:
        return hold_and_delta(lag, pov, float(self.cfg.pitch.analysis_rate), finish,
                              self._left, self._pending, self._post_state)
