"""The rows behind every window and turn: what goes in comes out at the same absolute index,
across the two arrays' swaps and growth, a span still in use never changes, and a warmed-up
stream allocates nothing per block."""
from __future__ import annotations

import tracemalloc

import numpy as np

from emolive.engine.windows import Rows


def test_rows_come_back_as_appended_across_swaps_and_growth():
    rng = np.random.default_rng(0)
    rows, everything, kept = Rows((3,), capacity=8), np.zeros((0, 3), np.float32), []
    for step in range(400):
        block = rng.standard_normal((int(rng.integers(0, 40)), 3)).astype(np.float32)
        rows.append(block)
        everything = np.concatenate([everything, block])
        assert rows.end == len(everything)
        start = int(rng.integers(rows.first, rows.end + 1))
        stop = int(rng.integers(start, rows.end + 1))
        got = rows.span(start, stop)
        np.testing.assert_array_equal(got, everything[start:stop])
        if step % 5 == 0:  # some spans stay alive (an offline batch, a whole-recording piece)
            kept.append((start, got.copy(), got))
        if step % 3 == 0:  # hold a long span now and then (a turn), then let it go
            rows.drop_before(rows.first + int(rng.integers(0, rows.end - rows.first + 1)))
    for start, want, got in kept:  # a span that is still alive is never overwritten by later appends
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(want, everything[start:start + len(want)])


def test_a_warmed_up_stream_allocates_nothing_per_block():
    """100 ms blocks of samples with up to 30 s held (an open turn): after the first cycle the
    two arrays suffice, so numpy allocates nothing (tracemalloc sees numpy's buffers)."""
    rows, block = Rows((), capacity=1024), np.ones(1600, np.float32)

    def cycle():
        for i in range(300):
            rows.append(block)
            window = rows.span(rows.end - 48000, rows.end)  # a window, used and let go, as live
            assert len(window) == min(48000, rows.end - rows.first)
            if i % 50 == 49:
                rows.drop_before(rows.end - 1600 * int(i / 10))

    cycle()
    tracemalloc.start()
    try:
        for _ in range(5):
            cycle()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16_000  # a few Python ints and frames; one held span alone would be 1.9 MB
