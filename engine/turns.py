"""Speech turns: contiguous speech, with a hang-over across short pauses, as spans of front-end frames.

The voice activity detector (engine.vad) says, per 20 ms frame, speech or not. A turn opens at
the first speech frame and stays open through pauses up to `hangover_s`; it closes at its last
speech frame once that much non-speech follows it, when `max_s` is reached (a long monologue
becomes several turns, so memory stays bounded), or at the end of the stream. A closed turn with
less than `min_s` of speech (a cough, a click) is dropped.

The detector's flags run ahead of the front end's frames (which wait for their look-ahead), so a
closed turn waits in `pending` until all its frames exist; then the runner evaluates the model
once over the whole span and publishes it (`turn.<stream>`, engine.schema).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TurnOptions:
    """How speech frames become turns; defaults in seconds, converted to frames by `TurnTracker`."""

    min_s: float = 0.5  # less speech than this is not a turn
    hangover_s: float = 0.5  # a pause shorter than this stays inside the turn
    max_s: float = 30.0  # longer turns are cut here (memory and latency stay bounded)


@dataclass(frozen=True)
class TurnSpan:
    """Frames [first, end) of one turn."""

    first: int
    end: int


class TurnTracker:
    """Feeds on per-frame speech flags in stream order; closed turns appear in `pending`."""

    def __init__(self, options: TurnOptions, frame_s: float) -> None:
        self.min_frames = max(1, round(options.min_s / frame_s))
        self.hangover = max(0, round(options.hangover_s / frame_s))
        self.max_frames = max(self.min_frames, round(options.max_s / frame_s))
        self.pending: list[TurnSpan] = []
        self._next = 0  # absolute index of the next flag
        self._first: int | None = None  # first frame of the open turn
        self._last = 0  # last speech frame of the open turn
        self._speech = 0  # speech frames in the open turn

    @property
    def decided(self) -> int:
        """Frames whose flags have been seen: no turn can begin before this one any more."""
        return self._next

    @property
    def open_since(self) -> int | None:
        """First frame of the turn still open (its frames must be kept), or None."""
        return self._first

    def add(self, flags: np.ndarray) -> None:
        """The next frames' speech flags."""
        for flag in map(bool, flags):
            frame, self._next = self._next, self._next + 1
            if flag:
                if self._first is None:
                    self._first, self._speech = frame, 0
                self._last = frame
                self._speech += 1
                if frame + 1 - self._first >= self.max_frames:
                    self._close()
            elif self._first is not None and (frame - self._last >= self.hangover
                                              or frame + 1 - self._first >= self.max_frames):
                # at the limit in a pause: the turn ends at its last speech frame, inside the limit (a
                # pause straddling it carried the turn on, and the speech after made it up to a hangover long)
                self._close()

    def finish(self) -> None:
        """End of stream: the open turn ends at its last speech frame."""
        if self._first is not None:
            self._close()

    def _close(self) -> None:
        if self._speech >= self.min_frames:
            self.pending.append(TurnSpan(self._first, self._last + 1))
        self._first = None
