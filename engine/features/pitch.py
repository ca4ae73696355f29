"""Online pitch and voicing: NCCF candidates, fixed-lag Viterbi, held log-F0, delta, voicing probability.

The design follows Kaldi's online pitch (normalised cross-correlation on a decimated signal,
a Viterbi path over lag candidates, log-pitch + delta + POV outputs) with Praat's candidate
strengths and path costs (octave cost, octave-jump cost, voiced/unvoiced cost, silence
threshold), because Praat is the reference users compare against.

Streaming: the Viterbi decision for frame t is traced back from the best state at frame
t + lag_frames, so outputs are final after a bounded delay and any chunking of the input gives
the same frames as one offline call.

This module keeps the buffers and the bookkeeping; the compiled kernels are in pitch_nccf
(decimation, candidates) and pitch_track (Viterbi, held log-F0, delta), as fbank keeps its own.
"""
from __future__ import annotations

import math

import numpy as np

from .config import FrontEndConfig
from .pitch_nccf import (DECIMATION, FILTER_TAPS, Candidates, NccfGeometry, NccfScratch, decimate_into,
                         decimation_filter, frame_candidates)
from .pitch_track import (FLOOR, HELD, PATH_STATE_SLOTS, POST_STATE_SLOTS, PathCosts, PathRing, hold_and_delta,
                          viterbi_advance)


class OnlinePitch:
    """Streaming pitch features: accept waveform, get finished rows of (log F0, delta, pov).

    Look-ahead: a frame's row is final once the NCCF span of frame k + lag + delta_window has
    arrived; `lookahead_samples` gives the exact figure past the frame's own window end.
    """

    def __init__(self, cfg: FrontEndConfig):
        p = cfg.pitch
        self.cfg = cfg
        self.h = decimation_filter(cfg.sample_rate, p.analysis_rate)
        width = int(round(p.window_ms * p.analysis_rate / 1000))
        lag_hi = int(math.ceil(p.analysis_rate / p.min_f0))
        self.geometry = NccfGeometry(hop=cfg.frame_shift // DECIMATION, center0=cfg.frame_length // (2 * DECIMATION),
                                     width=width, lag_lo=int(math.floor(p.analysis_rate / p.max_f0)), lag_hi=lag_hi,
                                     octave_cost=p.octave_cost)
        self.reach = width // 2 + (lag_hi + 1) // 2 + 1
        span = 2 * self.reach + 1
        self._scratch = NccfScratch(seg=np.zeros(span, dtype=np.float32), csum=np.zeros(span + 1),
                                    r=np.zeros(lag_hi - self.geometry.lag_lo + 3))
        hop_s = cfg.frame_shift / cfg.sample_rate
        self._costs = PathCosts(lag_frames=p.viterbi_lag_frames, jump_cost=p.octave_jump_cost * 0.01 / hop_s,
                                vu_cost=p.voiced_unvoiced_cost * 0.01 / hop_s, voicing_thr=p.voicing_threshold,
                                silence_thr=p.silence_threshold, peak_decay=p.peak_decay_per_s ** hop_s,
                                floor_rise=10 ** (p.noise_floor_rise_db_per_s * hop_s / 20),
                                noise_margin_db=p.noise_margin_db, pov_slope=p.pov_slope)
        self.reset()

    @property
    def lookahead_samples(self) -> int:
        """Input samples needed past the end of frame k's 25 ms window before row k is final."""
        p = self.cfg.pitch
        last_needed = DECIMATION * (self.geometry.center0 + self.reach) + (FILTER_TAPS - 1) // 2 + 1
        frames = p.viterbi_lag_frames + p.delta_window
        return frames * self.cfg.frame_shift + last_needed - self.cfg.frame_length

    def reset(self) -> None:
        self._raw = np.zeros(0, dtype=np.float32)
        self._raw_start = 0  # absolute index of self._raw[0]
        self._dec = np.zeros(0)
        self._dec_start = -self.reach  # decimated samples before 0: the first sample's (decimate_into)
        self._n_frames = 0  # NCCF frames computed
        p = self.cfg.pitch
        k, size = p.max_candidates, p.viterbi_lag_frames + 2
        state = np.zeros(PATH_STATE_SLOTS)  # PEAK, SEEN, DECIDED: 0
        state[FLOOR] = 10 ** (p.initial_noise_floor_dbfs / 20)
        self._ring = PathRing(delta=np.zeros(k + 1), lag=np.zeros((size, k + 1)), strength=np.zeros((size, k + 1)),
                              backpointer=np.zeros((size, k + 1), dtype=np.int64), unvoiced=np.zeros(size),
                              count=np.zeros(size, dtype=np.int64), state=state)
        self._left = np.zeros((p.delta_window, 3))  # last emitted (log F0, pov, stretch) rows: the delta's left context
        self._pending = np.zeros((p.delta_window, 3))  # decided (log F0, pov, stretch) rows awaiting right context
        self._post_state = np.zeros(POST_STATE_SLOTS)  # N_LEFT, N_PENDING, STRETCH, VOICED: 0
        self._post_state[HELD] = math.log(p.initial_f0)

    def accept(self, x: np.ndarray) -> np.ndarray:
        """Consume samples; return the rows [n, 3] that became final."""
        self._raw = np.concatenate([self._raw, x]) if self._raw.size else np.asarray(x, np.float32)
        n_avail = self._raw_start + self._raw.size
        return self._advance(n_avail, n_frames_total=None)

    def finish(self, n_frames_total: int) -> np.ndarray:
        """End of input: the remaining rows up to n_frames_total, the signal's last sample continued past
        its end (zeros made a DC offset a step there, as at its start: see decimate_into)."""
        n_avail = self._raw_start + self._raw.size
        g = self.geometry
        need = DECIMATION * (g.center0 + g.hop * max(n_frames_total - 1, 0) + self.reach + 1) + FILTER_TAPS
        pad = max(0, need - n_avail)
        last = self._raw[-1] if self._raw.size else np.float32(0.0)
        self._raw = np.concatenate([self._raw, np.full(pad, last, np.float32)])
        rows = self._advance(n_avail + pad, n_frames_total=n_frames_total)
        self.reset()
        return rows

    def _advance(self, n_avail: int, n_frames_total: int | None) -> np.ndarray:
        half = (FILTER_TAPS - 1) // 2
        dec_end = self._dec_start + self._dec.size
        new_end = (n_avail - half - 1) // DECIMATION + 1  # decimated samples computable
        if new_end > dec_end and self._raw.size:  # the first sample is known before any decimated one is made
            fresh = np.empty(new_end - dec_end)
            decimate_into(self._raw, self._raw_start, max(dec_end, 0), new_end, self.h,
                          fresh[max(0, -dec_end):])
            fresh[: max(0, -dec_end)] = self._raw[0]  # the decimated constant before the stream (unity DC gain)
            self._dec = np.concatenate([self._dec, fresh])
        # NCCF frames whose whole span is available (and, at the end, only real frames)
        g = self.geometry
        avail = (self._dec_start + self._dec.size - 1 - self.reach - g.center0) // g.hop + 1
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
        n, k = k1 - k0, p.max_candidates
        cand = Candidates(lag=np.zeros((n, k)), strength=np.zeros((n, k)), count=np.zeros(n, dtype=np.int64),
                          peak=np.zeros(n))
        frame_candidates(self._dec, self._dec_start, k0, k1, self.geometry, self._scratch, cand)
        out_lag = np.zeros(n + p.viterbi_lag_frames + 1)
        out_pov = np.zeros_like(out_lag)
        m = viterbi_advance(cand, k0, finish, self._ring, self._costs, out_lag, out_pov)
        return out_lag[:m], out_pov[:m]

    def _trim(self) -> None:
        """Drop samples no future frame can reach (bounded memory, as Kaldi's remainder buffer)."""
        keep_dec = self.geometry.center0 + self.geometry.hop * self._n_frames - self.reach
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
