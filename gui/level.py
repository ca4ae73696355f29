"""The input level meter's number, measured where the audio already is: on the engine's reader thread.

One RMS per block (a 1600-sample dot product, microseconds) stored in an attribute: the GUI reads
the attribute on its own redraw clock, so the audio path never waits on, or signals to, the GUI.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from emolive.engine.sources.base import AudioSource

SILENCE_DBFS = -90.0  # floor for digital silence, below anything a meter shows


def rms_dbfs(block: np.ndarray) -> float:
    """RMS level in dB relative to a full-scale square wave (|x| = 1), floored at SILENCE_DBFS."""
    mean_square = float(np.dot(block, block)) / max(len(block), 1)
    return max(SILENCE_DBFS, 10.0 * math.log10(mean_square)) if mean_square > 0 else SILENCE_DBFS


class LevelTap(AudioSource):
    """Passes another source's blocks through unchanged, keeping the level of the newest one in `level_dbfs`."""

    def __init__(self, inner: AudioSource) -> None:
        super().__init__(inner.description)
        self._inner = inner
        self.level_dbfs = SILENCE_DBFS

    # what the runner reads of a source, the inner one's, as it is now (a pipeline learns its rate as it
    # flows): without them the window gave no narrowband warning, and a file too short for one frame was
    # "finished: 0 estimates" where `emolive stream` says why
    @property
    def input_rate(self) -> float | None:  # type: ignore[override]
        return self._inner.input_rate

    @property
    def at_hand(self) -> bool:  # type: ignore[override]
        return self._inner.at_hand

    @property
    def start_s(self) -> float:  # type: ignore[override]
        return self._inner.start_s

    def _read_blocks(self) -> Iterator[np.ndarray]:
        for block in self._inner.blocks():
            self.level_dbfs = rms_dbfs(block)
            yield block
        self.level_dbfs = SILENCE_DBFS  # the audio ended: the meter falls rather than freezing

    def _dropped_blocks(self) -> int:
        return self._inner.stats.dropped_blocks

    def _device_gaps(self) -> tuple[int, float]:
        inner = self._inner.stats
        return inner.gaps, inner.gap_s

    def close(self) -> None:
        self._inner.close()
