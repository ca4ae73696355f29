"""Audio files of any format, rate and channel count, streamed in blocks.

libsndfile or FFmpeg decodes (engine.sources.decoders). The file is never loaded whole: long
recordings stream in constant memory, and real-time pacing (`realtime=True`) makes a file behave
like a live microphone for demos and latency tests.
"""
from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterator

import numpy as np

from emolive.engine.sources.base import DEFAULT_BLOCK_SIZE, SAMPLE_RATE, AudioSource, AudioSourceError, ToMono16k
from emolive.engine.sources.decoders import AudioInput, Decoder, open_decoder


class FileSource(AudioSource):
    """Stream a sound file as 16 kHz mono blocks, optionally paced at real time."""

    def __init__(self, path: str | os.PathLike[str], *, block_size: int = DEFAULT_BLOCK_SIZE,
                 realtime: bool = False, channels: tuple[int, ...] = ()) -> None:
        """`channels`: the 1-based channels mixed (all where empty), e.g. one side of a call recorded in two."""
        mixed = "" if not channels else f", channel{'s' if len(channels) > 1 else ''} {'+'.join(map(str, channels))}"
        super().__init__(f"file {os.fspath(path)}{mixed}")
        try:
            info = os.stat(path)
        except FileNotFoundError:
            missing = "a link to a missing file" if os.path.islink(path) else "audio file not found"
            raise AudioSourceError(f"{missing}: {os.fspath(path)}") from None
        except OSError as exc:  # a folder that cannot be searched, a link loop, a name too long: said as such
            raise AudioSourceError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the open, a device never end
            raise AudioSourceError(f"not a regular file: {os.fspath(path)}")
        self._decoder = open_decoder(path, os.fspath(path))
        try:
            self._convert = ToMono16k(self._decoder.rate, os.fspath(path), channels)
            self.input_rate = self._convert.rate
        except AudioSourceError:  # a rate out of bounds
            self._decoder.close()
            raise
        self._read_frames = frames_per_read(block_size, self._decoder.rate)
        self.realtime = realtime

    @property
    def at_hand(self) -> bool:
        """Read as fast as it goes unless paced at real time (AudioSource.at_hand)."""
        return not self.realtime

    def _read_blocks(self) -> Iterator[np.ndarray]:
        return converted_blocks(self._decoder, self._convert, self._read_frames)

    def close(self) -> None:
        self._decoder.close()


def frames_per_read(block_size: int, rate: float) -> int:
    """The decoder frames a read asks for, so that each read gives about `block_size` samples at 16 kHz."""
    return math.ceil(block_size * rate / SAMPLE_RATE)


def converted_blocks(decoder: Decoder, convert: ToMono16k, read_frames: int) -> Iterator[np.ndarray]:
    """The decoder's blocks of `read_frames` at 16 kHz mono, the resampler's tail included even when
    the decoder reports damage at the end (which is raised after it)."""
    damage = None
    try:
        for frames in decoder.blocks(read_frames):
            yield convert(frames)
    except AudioSourceError as exc:
        damage = exc
    yield convert(np.zeros((0, 1), np.float32), last=True)
    if damage is not None:
        raise damage


def read_mono_16k(file: AudioInput, what: str, block_size: int) -> np.ndarray:
    """All of a file's audio (a path or a binary file object) as 16 kHz mono float32, converted block by
    block as a FileSource of `block_size` delivers it: the memory of the result, however many channels
    and however high a rate it was decoded at (an 8 kB FLAC of 20 s at 768 kHz, 8 channels, held 1 GB
    decoded whole before its conversion)."""
    with open_decoder(file, what) as decoder:
        convert = ToMono16k(decoder.rate, what)
        blocks = list(converted_blocks(decoder, convert, frames_per_read(block_size, decoder.rate)))
    return np.concatenate(blocks)
