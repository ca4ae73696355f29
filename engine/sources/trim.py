"""A stretch of another source, `start` to `end` seconds: `analyze(path, start=…, end=…)`.

Trimming works on the 16 kHz blocks every source delivers, so it is exact to the sample and the
same for files, arrays and containers; the audio before `start` is decoded and dropped (a seek
would need each decoder's own, less exact, notion of position).
"""
from __future__ import annotations

import math
from numbers import Real
from collections.abc import Iterator

import numpy as np

from emolive.engine.sources.base import SAMPLE_RATE, AudioSource, AudioSourceError


class SpanError(AudioSourceError):
    """A `start`/`end` that fits no input at all: the caller's to fix, whichever input it came with."""


def check_span(start: float, end: float | None, what: str) -> None:
    """0 <= start < end (end None: to the input's end), both finite numbers ("5" is not one)."""
    numbers = all(isinstance(x, Real) and not isinstance(x, bool) for x in ((start,) if end is None else (start, end)))
    if not numbers or not (math.isfinite(start) and start >= 0) or (end is not None and not (math.isfinite(end)
                                                                                            and end > start)):
        raise SpanError(f"{what}: start={start!r}, end={end!r}; give 0 <= start < end, numbers of seconds")


class TrimmedSource(AudioSource):
    """The samples of `source` from `start` seconds up to `end` seconds (None: to its end)."""

    def __init__(self, source: AudioSource, start: float = 0.0, end: float | None = None) -> None:
        try:
            check_span(start, end, source.description)
        except SpanError:
            source.close()
            raise
        super().__init__(f"{source.description} from {start:g} s" + ("" if end is None else f" to {end:g} s"))
        self._source, self.start_s = source, float(start)
        self.input_rate, self.realtime = source.input_rate, source.realtime  # paced from the stretch's start
        self._first = round(start * SAMPLE_RATE)
        self._end = None if end is None else round(end * SAMPLE_RATE)

    @property
    def at_hand(self) -> bool:
        """A stretch of a recording at hand is at hand too: its windows are then batched from its first
        one, not as the reader's blocks arrive, so a stretch gives the same estimates on every run."""
        return self._source.at_hand

    def _read_blocks(self) -> Iterator[np.ndarray]:
        """The stretch's part of each block of the source as it reads it, unchecked: this source's own
        `blocks` checks what is kept, so a NaN outside the stretch does not stop it."""
        position = 0  # samples of the whole source seen so far
        for block in self._source._read_blocks():
            begin, stop = position, position + len(block)
            position = stop
            if stop <= self._first:
                continue
            if self._end is not None and begin >= self._end:
                return
            yield block[max(0, self._first - begin):None if self._end is None else self._end - begin]
        if position <= self._first:
            raise AudioSourceError(f"{self._source.description} has {position / SAMPLE_RATE:.3f} s of audio: "
                                   f"nothing from start={self.start_s:g} s")

    def close(self) -> None:
        self._source.close()

    def discard_captured(self) -> None:
        self._source.discard_captured()

    def stop_reading(self) -> None:
        self._source.stop_reading()
