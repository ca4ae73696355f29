"""Raw PCM from a pipe (stdin, or a subprocess's stdout), for piping audio between programs.

Pipes do not keep sample boundaries, so partial samples are carried over between reads; a
stall timeout turns a producer that went silent into an error instead of a hang.
"""
from __future__ import annotations

import os
import select
import sys
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from emolive.engine.defaults import RAW_SAMPLE_FORMATS
from emolive.engine.sources.base import DEFAULT_BLOCK_SIZE, SAMPLE_RATE, AudioSource, AudioSourceError

SAMPLE_FORMATS = {name: np.dtype(code) for name, code in RAW_SAMPLE_FORMATS.items()}


def read_pcm(fd: int, sample_format: str, block_size: int, stall_timeout: float | None, what: str) -> Iterator[np.ndarray]:
    """Yield float32 blocks of at most `block_size` samples from a file descriptor until end of stream."""
    dtype = SAMPLE_FORMATS[sample_format]
    scale = np.float32(1.0 / 32768) if dtype.kind == "i" else None
    pending = b""
    while True:
        if stall_timeout is not None and not select.select([fd], [], [], stall_timeout)[0]:
            raise AudioSourceError(f"{what} delivered no audio for {stall_timeout:g} s")
        chunk = os.read(fd, block_size * dtype.itemsize - len(pending))
        if not chunk:
            break
        pending += chunk
        usable = len(pending) - len(pending) % dtype.itemsize
        samples = np.frombuffer(pending[:usable], dtype).astype(np.float32)
        pending = pending[usable:]
        yield samples * scale if scale is not None else samples
    if pending:
        raise AudioSourceError(f"{what} ended in the middle of a sample ({len(pending)} stray bytes): "
                               f"is it really {sample_format}?")


class RawPcmSource(AudioSource):
    """Headerless mono 16 kHz PCM (float32 LE, or s16le) from a binary stream; stdin by default.

    The stream belongs to the caller, so `close()` leaves it open.
    """

    def __init__(self, stream: BinaryIO | None = None, *, sample_format: str = "f32le",
                 block_size: int = DEFAULT_BLOCK_SIZE) -> None:
        if sample_format not in SAMPLE_FORMATS:
            raise AudioSourceError(f"unknown raw sample format {sample_format!r}; use one of {', '.join(SAMPLE_FORMATS)}")
        self._stream = stream if stream is not None else sys.stdin.buffer
        name = "stdin" if stream is None else getattr(stream, "name", "stream")
        super().__init__(f"raw {sample_format} mono {SAMPLE_RATE} Hz PCM on {name}")
        self.sample_format = sample_format
        self.block_size = block_size

    def _read_blocks(self) -> Iterator[np.ndarray]:
        return read_pcm(self._stream.fileno(), self.sample_format, self.block_size, None, self.description)

    def close(self) -> None:
        """Nothing to release: the caller opened the stream and closes it."""
