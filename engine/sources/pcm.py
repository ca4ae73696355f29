"""Raw PCM from a pipe (stdin, or a subprocess's stdout), for piping audio between programs.

Pipes do not keep sample boundaries, so partial samples are carried over between reads; a
stall timeout, where the caller sets one, turns a producer that went silent into an error instead
of a wait (stdin and GStreamer pipelines set none: a live producer may rightly be silent).
"""
from __future__ import annotations

import os
import select
import threading
import sys
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from emolive.engine.defaults import RAW_SAMPLE_FORMATS
from emolive.engine.sources.base import (DEFAULT_BLOCK_SIZE, MAX_RATE, MIN_RATE, SAMPLE_RATE, AudioSource, AudioSourceError,
                                         ToMono16k)

SAMPLE_FORMATS = {name: np.dtype(code) for name, code in RAW_SAMPLE_FORMATS.items()}
STOP_POLL_S = 0.1  # how often a read waiting for bytes looks whether its source was closed
PIPE_EXAMPLE = "arecord -f FLOAT_LE -r 16000 -c 1 | emolive stream --source -"  # how to give stdin audio


def read_pcm(fd: int, sample_format: str, block_size: int, stall_timeout: float | None, what: str,
             channels: int = 1, stop: threading.Event | None = None) -> Iterator[np.ndarray]:
    """Yield float32 blocks of at most `block_size` samples from a file descriptor until end of stream;
    with `channels` > 1 the samples are interleaved frames, and a block holds whole frames only. Once
    `stop` is set nothing more is read (the descriptor is the caller's, and stdin's next reader gets it)."""
    dtype = SAMPLE_FORMATS[sample_format]
    frame_bytes = dtype.itemsize * channels
    scale = np.float32(1.0 / 32768) if dtype.kind == "i" else None
    pending = b""
    while True:
        if not wait_readable(fd, stall_timeout, stop, what):
            return
        chunk = os.read(fd, block_size * dtype.itemsize - len(pending))
        if not chunk:
            break
        pending += chunk
        usable = len(pending) - len(pending) % frame_bytes
        samples = np.frombuffer(pending[:usable], dtype).astype(np.float32)
        pending = pending[usable:]
        yield samples * scale if scale is not None else samples
    if pending:
        raise AudioSourceError(f"{what} ended in the middle of a {'frame' if channels > 1 else 'sample'} "
                               f"({len(pending)} stray bytes): is it really {sample_format}"
                               f"{f' with {channels} channels' if channels > 1 else ''}?")


def wait_readable(fd: int, stall_timeout: float | None, stop: threading.Event | None, what: str) -> bool:
    """Until `fd` has bytes to read (True) or `stop` is set (False), looking every STOP_POLL_S when there
    is a `stop`; an AudioSourceError after `stall_timeout` without any."""
    step = STOP_POLL_S if stop is not None else stall_timeout
    waited = 0.0
    while step is not None and not (stop is not None and stop.is_set()):
        if select.select([fd], [], [], step)[0]:
            return stop is None or not stop.is_set()
        waited += step
        if stall_timeout is not None and waited >= stall_timeout:
            raise AudioSourceError(f"{what} delivered no audio for {stall_timeout:g} s")
    return stop is None or not stop.is_set()


class RawPcmSource(AudioSource):
    """Headerless PCM (float32 LE, or s16le) from a binary stream, stdin by default, at `rate` Hz with
    `channels` interleaved channels; downmixed and resampled to 16 kHz mono like every other source.

    Raw PCM says nothing about itself, so the rate and channel count are the user's to give
    (`--rate`, `--channels`): 44.1 kHz stereo read as 16 kHz mono would be nonsense without a word.
    The stream belongs to the caller, so `close()` leaves it open.
    """

    def __init__(self, stream: BinaryIO | None = None, *, sample_format: str = "f32le",
                 block_size: int = DEFAULT_BLOCK_SIZE, rate: float = SAMPLE_RATE, channels: int = 1,
                 mixed: tuple[int, ...] = ()) -> None:
        """`mixed`: the 1-based channels of the `channels` mixed to mono (all where empty)."""
        if sample_format not in SAMPLE_FORMATS:
            raise AudioSourceError(f"unknown raw sample format {sample_format!r}; use one of {', '.join(SAMPLE_FORMATS)}")
        if not MIN_RATE <= rate <= MAX_RATE or not 1 <= channels <= 256:
            raise AudioSourceError(f"raw PCM at {rate:g} Hz with {channels} channels: give a rate of {MIN_RATE}-{MAX_RATE} Hz "
                                   "and 1-256 channels")
        if stream is None and sys.stdin is None:  # Python's stdin where descriptor 0 was closed (`<&-`)
            raise AudioSourceError(f"stdin is closed, so there is no raw PCM to read; pipe it in, e.g. {PIPE_EXAMPLE}")
        self._stream = stream if stream is not None else sys.stdin.buffer
        name = "stdin" if stream is None else getattr(stream, "name", "stream")
        layout = "mono" if channels == 1 else f"{channels}-channel"
        super().__init__(f"raw {sample_format} {layout} {rate:g} Hz PCM on {name}")
        self.sample_format, self.channels = sample_format, channels
        self.block_size = max(1, round(block_size * rate / SAMPLE_RATE))  # frames read per block at the input rate
        self._convert = ToMono16k(rate, self.description, mixed)
        self.input_rate = self._convert.rate
        self._closed = threading.Event()

    def _read_blocks(self) -> Iterator[np.ndarray]:
        blocks = read_pcm(self._stream.fileno(), self.sample_format, self.block_size * self.channels, None,
                          self.description, channels=self.channels, stop=self._closed)
        heard = False
        try:
            for block in blocks:
                heard = heard or len(block) > 0
                yield self._convert(block.reshape(-1, self.channels))
        except AudioSourceError:  # cut mid-sample: all that decoded is scored first, the resampler's tail too
            yield self._tail()
            raise
        if not heard:  # as an empty file is an error, not a recording of nothing
            raise AudioSourceError(f"{self.description}: the stream ended before any audio; pipe PCM into it, "
                                   f"e.g. {PIPE_EXAMPLE}")
        yield self._tail()

    def _tail(self) -> np.ndarray:
        """The resampler's last output, held back by its filter's delay (~40 ms): flushed however the stream ends."""
        return self._convert(np.zeros((0, self.channels), np.float32), last=True)

    def stop_reading(self) -> None:
        """A reader left waiting on stdin after `emolive.stream('-')`'s loop was left had taken the next
        second of it, for no one: the next reader of the stream lost it."""
        self._closed.set()

    def close(self) -> None:
        """The stream stays open, the caller's; only a read not yet made is not made."""
        self.stop_reading()
