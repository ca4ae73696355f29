"""The pitch path, written for numba: fixed-lag Viterbi over candidates, trace-back, held log-F0 and delta.

State that lives between calls sits in small float arrays (numba keeps them in place); their
slots are named below, and the path's parameters and ring buffers travel as named tuples.
Viterbi state 0 is "unvoiced"; states 1..K are a frame's candidates, strongest first.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .kernels import kernel

UNVOICED = 0  # the Viterbi state (ring column) meaning "no pitch"; its lag is 0

# slots of PathRing.state
PEAK = 0  # running peak level (decays by peak_decay per frame)
SEEN = 1  # frames pushed through the forward pass
DECIDED = 2  # frames whose decision has been written out
FLOOR = 3  # minimum-statistics noise floor (rises by floor_rise per frame)
PATH_STATE_SLOTS = 4

# slots of hold_and_delta's state
HELD = 0  # log F0 held through unvoiced frames
N_LEFT = 1  # valid rows at the end of `left` (the delta's left context)
N_PENDING = 2  # decided rows in `pending` awaiting their right context
STRETCH = 3  # number of the current voiced stretch (a voicing onset starts the next)
VOICED = 4  # 1.0 where the last decided frame was voiced
POST_STATE_SLOTS = 5

# columns of hold_and_delta's `left` and `pending` rows and of its output rows
LOG_F0, POV, ROW_STRETCH = 0, 1, 2  # rows: log F0, voicing probability, the frame's voiced stretch
OUT_LOG_F0, OUT_DELTA, OUT_POV = 0, 1, 2


class PathCosts(NamedTuple):
    """The Viterbi's parameters (costs already scaled to the frame hop, as Praat's are per 10 ms)."""

    lag_frames: int  # a frame is decided this many frames after it is seen
    jump_cost: float  # per octave between the lags of consecutive voiced frames
    vu_cost: float  # for a voiced <-> unvoiced transition
    voicing_thr: float  # Praat's voicing threshold: the unvoiced state's base strength
    silence_thr: float  # frame peak relative to the running peak below which a frame leans unvoiced
    peak_decay: float  # per frame
    floor_rise: float  # per frame
    noise_margin_db: float  # frames this close to the noise floor lean unvoiced
    pov_slope: float  # logistic slope of the voicing probability


class PathRing(NamedTuple):
    """The Viterbi's memory: scores at the newest frame, and the last lag_frames + 2 frames' states."""

    delta: np.ndarray  # float64[K + 1]: best path score ending in each state, newest frame (max 0)
    lag: np.ndarray  # float64[ring, K + 1]: each frame's states' lags (UNVOICED: 0)
    strength: np.ndarray  # float64[ring, K + 1]: their local scores
    backpointer: np.ndarray  # int64[ring, K + 1]: best previous state
    unvoiced: np.ndarray  # float64[ring]: the unvoiced state's score per frame
    count: np.ndarray  # int64[ring]: candidates per frame
    state: np.ndarray  # float64[PATH_STATE_SLOTS]: PEAK, SEEN, DECIDED, FLOOR


@kernel()
def viterbi_advance(cand, first_frame, finish, ring, costs, out_lag, out_pov):
    """Forward Viterbi over new frames (pitch_nccf.Candidates `cand`, the first being `first_frame`);
    writes decided frames (lag 0 = unvoiced) to out_* and returns how many.

    A frame is pushed towards unvoiced when it is quiet relative to the running peak (Praat's
    silence threshold, made causal) or close to the tracked noise floor (minimum statistics),
    which catches periodic background noise before the first loud sound of a stream.
    """
    state, delta = ring.state, ring.delta
    size = ring.lag.shape[0]
    slots = ring.lag.shape[1]
    new_delta = np.empty(slots)
    n_out = 0
    for row in range(cand.lag.shape[0]):
        t = first_frame + row
        level = cand.peak[row]
        peak = max(level, state[PEAK] * costs.peak_decay)
        state[PEAK] = peak
        ratio = level / peak if peak > 0.0 else 0.0
        u = costs.voicing_thr + max(0.0, 2.0 - ratio / (costs.silence_thr / (1.0 + costs.voicing_thr)))
        floor = min(level, state[FLOOR] * costs.floor_rise)
        state[FLOOR] = floor
        if level <= 0.0:
            u += 2.0
        elif floor > 0.0:
            snr_db = 20.0 * math.log10(level / floor)
            u += max(0.0, 2.0 * (1.0 - snr_db / costs.noise_margin_db))
        slot = t % size
        _store_frame(ring, slot, u, cand, row)
        if t == 0:
            for j in range(slots):
                delta[j] = ring.strength[slot, j]
                ring.backpointer[slot, j] = 0
        else:
            _step(ring, (t - 1) % size, slot, costs, new_delta)
        state[SEEN] = t + 1
        if t - costs.lag_frames >= state[DECIDED]:
            n_out = _trace_out(ring, t, int(state[DECIDED]), int(state[DECIDED]) + 1, costs.pov_slope,
                               out_lag, out_pov, n_out)
            state[DECIDED] += 1
    if finish and state[SEEN] > state[DECIDED]:
        last = int(state[SEEN]) - 1
        n_out = _trace_out(ring, last, int(state[DECIDED]), last + 1, costs.pov_slope, out_lag, out_pov, n_out)
        state[DECIDED] = state[SEEN]
    return n_out


@kernel()
def _store_frame(ring, slot, u, cand, row):
    """Frame `row` of `cand` into ring column `slot`: the unvoiced state scored `u`, then its candidates."""
    ring.unvoiced[slot] = u
    ring.count[slot] = cand.count[row]
    ring.lag[slot, UNVOICED] = 0.0
    ring.strength[slot, UNVOICED] = u
    for j in range(1, ring.lag.shape[1]):
        if j <= cand.count[row]:
            ring.lag[slot, j] = cand.lag[row, j - 1]
            ring.strength[slot, j] = cand.strength[row, j - 1]
        else:
            ring.lag[slot, j] = 0.0
            ring.strength[slot, j] = -1e30


@kernel()
def _step(ring, prev, slot, costs, new_delta):
    """One Viterbi step from ring slot `prev` to `slot`: best predecessors, then scores shifted to max 0."""
    delta = ring.delta
    slots = delta.shape[0]
    for j in range(slots):
        best = -1e300
        arg = 0
        for i in range(slots):
            if delta[i] < -1e29:
                continue
            li = ring.lag[prev, i]
            lj = ring.lag[slot, j]
            if li > 0.0 and lj > 0.0:
                cost = costs.jump_cost * abs(math.log2(li / lj))
            elif li > 0.0 or lj > 0.0:
                cost = costs.vu_cost
            else:
                cost = 0.0
            v = delta[i] - cost
            if v > best:
                best = v
                arg = i
        new_delta[j] = best + ring.strength[slot, j]
        ring.backpointer[slot, j] = arg
    top = -1e300
    for j in range(slots):
        top = max(top, new_delta[j])
    for j in range(slots):
        delta[j] = new_delta[j] - top if new_delta[j] > -1e29 else -1e30


@kernel()
def _trace_out(ring, t_end, f0, f1, pov_slope, out_lag, out_pov, n_out):
    """Trace back from the best state at t_end and write frames [f0, f1) in order."""
    size = ring.lag.shape[0]
    delta = ring.delta
    j = 0
    for i in range(delta.shape[0]):
        if delta[i] > delta[j]:
            j = i
    picks = np.empty(t_end - f0 + 1, dtype=np.int64)
    for t in range(t_end, f0 - 1, -1):
        picks[t - f0] = j
        j = ring.backpointer[t % size, j]
    for t in range(f0, f1):
        slot = t % size
        j = picks[t - f0]
        best_voiced = ring.strength[slot, 1] if ring.count[slot] > 0 else -1.0
        pov = 1.0 / (1.0 + math.exp(-pov_slope * (best_voiced - ring.unvoiced[slot])))
        # the soft score is pinned to the path's decision so that pov > 0.5 means voiced
        if j != UNVOICED:
            pov = max(pov, 0.51)
        else:
            pov = min(pov, 0.49)
        out_lag[n_out] = ring.lag[slot, j]
        out_pov[n_out] = pov
        n_out += 1
    return n_out


@kernel()
def hold_and_delta(lag, pov, rate, finish, left, pending, state):
    """Rows (log F0 held through unvoiced frames, delta, pov) whose delta context is complete.

    The delta is Kaldi's, sum_j j (x[t+j] - x[t-j]) / (2 sum_j j^2) over j = 1..w, taken within the
    frame's voiced stretch (a voicing onset and the held frames after its voiced run): a neighbour
    in another stretch is replaced by the stretch's edge frame on that side, as Kaldi replicates a
    stream's first and last frames. Across an onset the held value is the previous stretch's pitch
    (or, before the first, initial_f0): its step to the new pitch is no pitch movement, and a delta
    over it made a spike of up to 0.3 that a shift of the audio by a millisecond could move onto
    another frame or remove (the student's valence swung by 2.5 on the 1-7 scale with it).
    `state` slots: HELD, N_LEFT, N_PENDING, STRETCH, VOICED; `left`/`pending` columns LOG_F0, POV, ROW_STRETCH.
    """
    w = left.shape[0]
    held = state[HELD]
    n_left = int(state[N_LEFT])
    n_pend = int(state[N_PENDING])
    stretch, voiced = state[STRETCH], state[VOICED] > 0.0
    total = n_pend + lag.shape[0]
    vals = np.empty(total)
    povs = np.empty(total)
    stretches = np.empty(total)
    for i in range(n_pend):
        vals[i] = pending[i, LOG_F0]
        povs[i] = pending[i, POV]
        stretches[i] = pending[i, ROW_STRETCH]
    for i in range(lag.shape[0]):
        if lag[i] > 0.0:
            held = math.log(rate / lag[i])
            if not voiced:
                stretch += 1.0
        voiced = lag[i] > 0.0
        vals[n_pend + i] = held
        povs[n_pend + i] = pov[i]
        stretches[n_pend + i] = stretch
    n_emit = total if finish else max(0, total - w)
    norm = 0.0
    for j in range(1, w + 1):
        norm += 2.0 * j * j
    out = np.empty((n_emit, 3), dtype=np.float32)
    for i in range(n_emit):
        own = stretches[i]
        acc = 0.0
        right = vals[i]  # the stretch's latest frame up to i + j: its edge once j passes it
        before = vals[i]
        left_open = True  # frames to the left are still in the stretch (and in the stream)
        for j in range(1, w + 1):
            k = i + j
            if k < total and stretches[k] == own:
                right = vals[k]
            k = i - j
            if left_open:
                if k >= 0:
                    value, where = vals[k], stretches[k]
                elif n_left + k >= 0:
                    value, where = left[w + k, LOG_F0], left[w + k, ROW_STRETCH]
                else:
                    value, where = 0.0, own - 1.0  # before the stream: its first frame is the edge
                if where == own:
                    before = value
                else:
                    left_open = False
            acc += j * (right - before)
        out[i, OUT_LOG_F0] = vals[i]
        out[i, OUT_DELTA] = acc / norm
        out[i, OUT_POV] = povs[i]
    keep = min(w, n_left + n_emit)  # the left context slides over what was just emitted
    merged = np.empty((n_left + n_emit, 3))
    merged[:n_left] = left[w - n_left:]
    for i in range(n_emit):
        merged[n_left + i, LOG_F0] = vals[i]
        merged[n_left + i, POV] = povs[i]
        merged[n_left + i, ROW_STRETCH] = stretches[i]
    left[w - keep:] = merged[n_left + n_emit - keep:]
    for i in range(n_emit, total):
        pending[i - n_emit, LOG_F0] = vals[i]
        pending[i - n_emit, POV] = povs[i]
        pending[i - n_emit, ROW_STRETCH] = stretches[i]
    state[HELD] = held
    state[N_LEFT] = keep
    state[N_PENDING] = total - n_emit
    state[STRETCH] = stretch
    state[VOICED] = 1.0 if voiced else 0.0
    return out
