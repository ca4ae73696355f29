"""A single-producer/single-consumer ring of audio frames that needs no lock.

The PortAudio callback runs on a real-time thread: taking a lock there can stall it behind
the consumer and lose audio. Here the producer only ever writes `_head` and the consumer only
ever writes `_tail`; each publishes its counter after touching the data, and a Python int
assignment is atomic, so neither side ever waits for the other.
"""
from __future__ import annotations

import numpy as np


class FrameRing:
    """Fixed-capacity ring of (frames, channels) float32 audio; a write that does not fit is dropped whole."""

    def __init__(self, capacity: int, channels: int) -> None:
        self._buf = np.zeros((capacity, channels), dtype=np.float32)
        self._capacity = capacity
        self._head = 0  # total frames ever written; producer-owned
        self._tail = 0  # total frames ever read; consumer-owned
        self.dropped_writes = 0  # producer-owned

    def write(self, frames: np.ndarray) -> bool:
        """Producer: copy all of `frames` in, or count a drop and return False when full."""
        n = len(frames)
        head = self._head
        if n > self._capacity - (head - self._tail):
            self.dropped_writes += 1
            return False
        start = head % self._capacity
        first = min(n, self._capacity - start)
        self._buf[start:start + first] = frames[:first]
        self._buf[:n - first] = frames[first:]
        self._head = head + n
        return True

    def count_drop(self) -> None:
        """Producer: record audio lost before it reached the ring (e.g. a device overflow)."""
        self.dropped_writes += 1

    def read(self) -> np.ndarray:
        """Consumer: take everything available as a new (frames, channels) array (possibly empty)."""
        tail = self._tail
        n = self._head - tail
        start = tail % self._capacity
        first = min(n, self._capacity - start)
        out = np.concatenate((self._buf[start:start + first], self._buf[:n - first]))
        self._tail = tail + n
        return out
