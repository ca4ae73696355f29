"""Raw PCM through a real pipe: a stream cut in the middle of a sample still delivers all it decoded."""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import soxr

from emolive.engine.sources import AudioSourceError, RawPcmSource


def write_and_close(fd: int, payload: bytes) -> None:
    with os.fdopen(fd, "wb") as pipe:
        pipe.write(payload)


def read_through_a_pipe(payload: bytes, rate: float) -> tuple[np.ndarray, AudioSourceError | None]:
    """What RawPcmSource delivers of `payload` written into a pipe, and the error it ended with."""
    read_fd, write_fd = os.pipe()
    writer = threading.Thread(target=write_and_close, args=(write_fd, payload))
    writer.start()  # the payload is larger than a pipe holds: written while it is read
    blocks, error = [], None
    with os.fdopen(read_fd, "rb") as pipe, RawPcmSource(pipe, rate=rate) as source:
        try:
            blocks += source.blocks()
        except AudioSourceError as exc:
            error = exc
    writer.join()
    return np.concatenate(blocks), error


def test_a_stream_cut_mid_sample_at_44k_still_delivers_the_resamplers_tail(speech):
    """The converter was not flushed before the stray-bytes error: 3.14 s of audio came out as 3.10 s,
    where "every sample that decodes is scored, then the damage is reported" (docs/engine.md)."""
    audio = soxr.resample(speech[:16000 * 3], 16000, 44100).astype("<f4")
    whole, clean_end = read_through_a_pipe(audio.tobytes(), 44100)
    cut, error = read_through_a_pipe(audio.tobytes() + b"\x01", 44100)
    assert clean_end is None and error is not None and "1 stray bytes" in str(error)
    assert len(whole) == pytest.approx(3 * 16000, abs=2)  # the tail makes it whole (soxr rounds to a sample)
    np.testing.assert_array_equal(cut, whole)
