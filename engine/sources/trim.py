"""A stretch of another source, `start` to `end` seconds: `analyze(path, start=…, end=…)`.

Trimming works on the 16 kHz blocks every source delivers, so it is exact to the sample and the
same for files, arrays and containers; the audio before `start` is decoded and dropped (a seek
would need each decoder's own, less exact, notion of position).
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from emolive.engine.sources.base import SAMPLE_RATE, AudioSource, AudioSourceError


class TrimmedSource(AudioSource):
    """The samples of `source` from `start` seconds up to `end` seconds (None: to its end)."""

    def __init__(self, source: AudioSource, start: float = 0.0, end: float | None = None) -> None:
        if not (math.isfinite(start) and start >= 0) or (end is not None and not (math.isfinite(end) and end > start)):
            source.close()
            raise AudioSourceError(f"{source.description}: start={start!r}, end={end!r}; give 0 <= start < end")
        super().__init__(f"{source.description} from {start:g} s" + ("" if end is None else f" to {end:g} s"))
        self._source, self.start = source, start
        self._first = round(start * SAMPLE_RATE)
        self._end = None if end is None else round(end * SAMPLE_RATE)

    def _read_blocks(self) -> Iterator[np.ndarray]:
        position = 0  # samples of the whole source seen so far
        for block in self._source.blocks():
            begin, stop = position, position + len(block)
            position = stop
            if stop <= self._first:
                continue
            if self._end is not None and begin >= self._end:
                return
            yield block[max(0, self._first - begin):None if self._end is None else self._end - begin]
        if position <= self._first:
            raise AudioSourceError(f"{self._source.description} has {position / SAMPLE_RATE:.3f} s of audio: "
                                   f"nothing from start={self.start:g} s")

    def close(self) -> None:
        self._source.close()
