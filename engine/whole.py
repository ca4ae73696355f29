"""The whole-recording estimate in bounded memory.

The estimate of a whole recording is one model pass over all of its frames. Keeping every frame
and its samples (which a teacher reads; a student does not, and none are kept for it) costs ~80 kB
per second of audio: an hour of input held 1.4 GB. So the recording is cut into pieces of
`MAX_PIECE_S`; each full piece is evaluated as it completes and only its prediction is kept, and
the estimate is the pieces' predictions averaged by their length. A recording up to `MAX_PIECE_S`
long is one piece: exactly one pass, as before.
The shipped models were trained on clips of 1-10 s, so a pass over minutes is an extrapolation
either way; past 5 minutes, a duration-weighted mean of 5-minute passes is the figure kept.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from emolive.engine.features import FrontEndConfig
from emolive.engine.plugin import Prediction
from emolive.engine.windows import Arrival, FrameBuffer, Window, voiced_share

MAX_PIECE_S = 300.0  # held at most: 300 s x ~80 kB/s = 24 MB, whatever the recording's length


class WholeRecording:
    """Takes every frame of a stream; `finish` gives the whole-recording prediction and its span."""

    def __init__(self, cfg: FrontEndConfig, predict: Callable[[Window], Prediction], samples: bool = True) -> None:
        self.cfg, self._predict = cfg, predict
        self.piece_frames = max(1, round(MAX_PIECE_S * cfg.sample_rate / cfg.frame_shift))
        self._buffer = FrameBuffer(cfg, samples)  # `samples`: whether the model reads them (FrameBuffer)
        self._first = 0  # absolute frame the open piece starts at
        self._pieces: list[tuple[int, Prediction, float]] = []  # (frames, prediction, voiced share) per piece
        self._last: Window | None = None  # the latest piece: the whole span ends where it does

    @property
    def end_frame(self) -> int:
        return self._buffer.end_frame

    def add(self, frames: np.ndarray, samples: np.ndarray, arrival: Arrival) -> None:
        """New frames and the samples they cover; a piece that fills up is evaluated now and let go."""
        self._buffer.add(frames, samples)
        while self._buffer.end_frame - self._first >= self.piece_frames:
            self._close_piece(self.piece_frames, arrival)

    def finish(self, arrival: Arrival) -> tuple[Window, Prediction, float]:
        """(the span of the whole recording, its prediction, its voiced share); call once frames exist."""
        if self._buffer.end_frame > self._first:
            self._close_piece(self._buffer.end_frame - self._first, arrival)
        assert self._last is not None, "finish() before any frame"
        lengths = [n for n, _, _ in self._pieces]
        prediction = self._pieces[0][1] if len(self._pieces) == 1 else Prediction(
            avd=weighted_mean([p.avd for _, p, _ in self._pieces], lengths),
            class_probs=weighted_mean([p.class_probs for _, p, _ in self._pieces], lengths),
            embedding=weighted_mean([p.embedding for _, p, _ in self._pieces], lengths))
        voiced = float(np.average([v for _, _, v in self._pieces], weights=lengths))  # a share of frames, not a
        # prediction: float64, as each window's
        span = Window(0, self._last.features, self._last.samples, 0, self._last.end_sample, arrival)
        return span, prediction, voiced

    def _close_piece(self, length: int, arrival: Arrival) -> None:
        window = self._buffer.window(self._first, length, len(self._pieces), arrival)
        self._pieces.append((length, self._predict(window), voiced_share(window.features, self.cfg)))
        self._last = window
        self._first += length
        self._buffer.drop_before(self._first)


def weighted_mean(values: list[np.ndarray], weights: list[int]) -> np.ndarray:
    """The mean of equally shaped arrays, each counted `weight` times (float32, as predictions are)."""
    stacked = np.stack([np.asarray(v, np.float64) for v in values])
    return np.average(stacked, axis=0, weights=np.asarray(weights, np.float64)).astype(np.float32)
