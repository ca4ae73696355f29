"""Audio files of any format, rate and channel count that libsndfile reads, streamed in blocks.

The file is never loaded whole: long recordings stream in constant memory, and real-time
pacing (`realtime=True`) makes a file behave like a live microphone for demos and latency tests.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator

import numpy as np
import soundfile as sf

from emolive.engine.sources.base import DEFAULT_BLOCK_SIZE, SAMPLE_RATE, AudioSource, AudioSourceError, ToMono16k


class FileSource(AudioSource):
    """Stream a sound file as 16 kHz mono blocks, optionally paced at real time."""

    def __init__(self, path: str | os.PathLike[str], *, block_size: int = DEFAULT_BLOCK_SIZE,
                 realtime: bool = False) -> None:
        super().__init__(f"file {os.fspath(path)}")
        if not os.path.exists(path):
            missing = "a link to a missing file" if os.path.islink(path) else "audio file not found"
            raise AudioSourceError(f"{missing}: {os.fspath(path)}")
        if not os.path.isfile(path):  # a FIFO would block the open, a device never end
            raise AudioSourceError(f"not a regular file: {os.fspath(path)}")
        try:
            self._file = sf.SoundFile(path)
        except sf.SoundFileError as exc:
            raise AudioSourceError(f"cannot read {os.fspath(path)} as audio: {_reason(exc)}") from None
        if self._file.frames == 0:
            self._file.close()
            raise AudioSourceError(f"audio file contains no samples: {os.fspath(path)}")
        try:
            self._convert = ToMono16k(self._file.samplerate, os.fspath(path))
        except AudioSourceError:  # a rate out of bounds
            self._file.close()
            raise
        self._read_frames = math.ceil(block_size * self._file.samplerate / SAMPLE_RATE)
        self.realtime = realtime

    def _read_blocks(self) -> Iterator[np.ndarray]:
        started, emitted = time.monotonic(), 0
        while True:
            try:
                frames = self._file.read(self._read_frames, dtype="float32", always_2d=True)
            except sf.SoundFileError as exc:
                raise AudioSourceError(f"{self.description} is damaged: {_reason(exc)}") from None
            last = len(frames) < self._read_frames
            block = self._convert(frames, last=last)
            emitted += len(block)
            if self.realtime:  # a block is available only once its last sample would have been captured
                time.sleep(max(0.0, started + emitted / SAMPLE_RATE - time.monotonic()))
            yield block
            if last:
                return

    def close(self) -> None:
        self._file.close()


def _reason(exc: Exception) -> str:
    """libsndfile's own explanation without the repeated file name."""
    return getattr(exc, "error_string", None) or str(exc)
