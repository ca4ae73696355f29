"""Sliding windows over the front end's frames (and the samples they cover), cut at every hop.

Window i covers frames [i*hop, i*hop + window): the windows sit on a fixed grid in stream time,
so an estimate means the same span live and offline. Frame k covers samples [k*shift, k*shift +
frame_length), so window i covers samples [i*hop*shift, (i*hop + window - 1)*shift + frame_length);
those samples travel with the features for plugins that read audio (the teacher).

Memory stays bounded the Kaldi way: frames and samples before the next window's start are
dropped, an offset remembers where the buffers begin (`Rows`: two arrays used in turn, so a
live stream allocates nothing per block and its resident memory stays flat).
"""
from __future__ import annotations

import math
import sys
from numbers import Real
from dataclasses import dataclass

import numpy as np

from emolive.engine.errors import EmoliveError
from emolive.engine.features.config import FrontEndConfig

MAX_SECONDS = 60.0  # a window's features, samples and model activations grow with its length: at 60 s they
# stay within tens of MB for the student (and a few hundred MB of attention for the teacher); emotion
# is estimated over seconds, so nothing longer is useful


class WindowError(EmoliveError, ValueError):
    """Window or hop options that do not fit the front end's frame rate; the text says what would."""


@dataclass(frozen=True)
class WindowSpec:
    """Window and hop lengths in frames."""

    window: int
    hop: int

    @classmethod
    def from_seconds(cls, window_s: float, hop_s: float, cfg: FrontEndConfig) -> WindowSpec:
        """Convert seconds to frames; both must be positive whole numbers of frames."""
        frame_s = cfg.frame_shift / cfg.sample_rate
        return cls(_frames(window_s, frame_s, "window"), _frames(hop_s, frame_s, "hop"))


def _frames(seconds: float, frame_s: float, what: str) -> int:
    """`seconds` of `what` ("window", "hop") as frames. Errors name the option as both callers know it
    (the CLI's --window, the API's window=) and the value to its last digit: 60.0000001 read as "60"."""
    if not isinstance(seconds, Real) or isinstance(seconds, bool):
        raise WindowError(f"{what} (--{what}, {what}=) {seconds!r}: give a number of seconds")
    n = seconds / frame_s
    if not math.isfinite(n) or round(n) < 1 or abs(n - round(n)) > 1e-6:
        raise WindowError(f"{what} (--{what}, {what}=) {float(seconds):.12g} s must be a positive multiple of the "
                          f"{1000 * frame_s:g} ms frame shift")
    if seconds > MAX_SECONDS:
        raise WindowError(f"{what} (--{what}, {what}=) {float(seconds):.12g} s is longer than the {MAX_SECONDS:g} s "
                          "emolive allows")
    return round(n)


@dataclass(frozen=True)
class Arrival:
    """When the block that completed a window reached the runner: it anchors latency and wall clock."""

    monotonic: float  # time.monotonic(), for latency
    wall: float  # time.time(), taken as the capture time of the block's last sample
    samples: int  # samples in the stream up to and including that block


@dataclass(frozen=True)
class Window:
    """One window's features and samples, with its place in the stream."""

    index: int  # position on the hop grid (the short-stream window is 0)
    features: np.ndarray  # float32 [frames, num_features]
    samples: np.ndarray  # float32, the samples those frames cover (none where the model reads none)
    start_sample: int
    end_sample: int
    arrival: Arrival


def covered_end(frames: int, cfg: FrontEndConfig) -> int:
    """The sample after the last one frames [0, `frames`) cover: what a model reading samples hears of
    them (the fewer than a shift of samples after the last frame are no frame's)."""
    return (frames - 1) * cfg.frame_shift + cfg.frame_length


def voiced_share(features: np.ndarray, cfg: FrontEndConfig) -> float:
    """The share of frames the pitch tracker calls voiced (the front end's last column)."""
    return float(np.mean(features[:, cfg.num_features - 1] > cfg.pitch.voicing_threshold))


class Rows:
    """Rows appended at the end and dropped from the front, addressed by absolute index.

    Held in one of two arrays used in turn: new rows are copied in after the last; when they
    would pass its end, the held rows move to the front of the other array. A live stream
    therefore allocates nothing here per block and its resident memory stays flat, where joining
    blocks into a new array each time churned allocations of up to a 30 s turn's size. Spans are
    handed out as views: appends only write past every row held, and the other array is written
    again only when no span of it is still alive (its reference count says so); else, as when
    what is held does not fit, a new array takes its place, so a span never changes under its user.
    """

    def __init__(self, row_shape: tuple[int, ...], dtype: type = np.float32, capacity: int = 1024) -> None:
        self._arrays = [np.empty((capacity, *row_shape), dtype), np.empty((capacity, *row_shape), dtype)]
        self._lo = self._hi = 0  # held rows are self._arrays[0][lo:hi]
        self.first = 0  # absolute index of the first held row

    @property
    def end(self) -> int:
        """Absolute index after the last row."""
        return self.first + self._hi - self._lo

    def append(self, rows: np.ndarray) -> None:
        current = self._arrays[0]
        if self._hi + len(rows) > len(current):
            held = self._hi - self._lo
            spare = self._arrays[1]
            # references to the spare: the list, this name and getrefcount's argument; more are live spans
            if held + len(rows) > len(spare) or sys.getrefcount(spare) > 3:
                size = len(spare)
                while held + len(rows) > size:
                    size *= 2
                spare = np.empty((size, *current.shape[1:]), current.dtype)
            spare[:held] = current[self._lo:self._hi]
            self._arrays = [spare, current]
            self._lo, self._hi, current = 0, held, spare
        current[self._hi:self._hi + len(rows)] = rows
        self._hi += len(rows)

    def span(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) (absolute, clamped to those held), a view that later appends leave alone."""
        lo = self._lo + min(max(0, start - self.first), self._hi - self._lo)
        hi = self._lo + min(max(0, stop - self.first), self._hi - self._lo)
        return self._arrays[0][lo:max(lo, hi)]

    def drop_before(self, index: int) -> None:
        """Let go of rows before absolute `index`."""
        drop = min(max(0, index - self.first), self._hi - self._lo)
        self._lo, self.first = self._lo + drop, self.first + drop


NO_SAMPLES = np.zeros(0, np.float32)  # a span's samples where the model reads none


class FrameBuffer:
    """Frames and the samples they cover, from an absolute offset on: the store behind every span
    (`Rows` each); `drop_before` frees what no later span needs. With `samples=False` (a model of
    front-end features alone: engine.plugin.reads_samples) no sample is kept and spans have none:
    the whole-recording buffer held 5 minutes of them, 19 MB, for nothing."""

    def __init__(self, cfg: FrontEndConfig, samples: bool = True) -> None:
        self.cfg = cfg
        self._frames = Rows((cfg.num_features,), capacity=256)
        self._samples = Rows((), capacity=256 * cfg.frame_shift) if samples else None

    @property
    def end_frame(self) -> int:
        """Absolute index after the last frame added."""
        return self._frames.end

    def add(self, frames: np.ndarray, samples: np.ndarray) -> None:
        self._frames.append(frames)
        if self._samples is not None:
            self._samples.append(samples)

    @property
    def held_samples(self) -> int:
        """Samples held now."""
        return 0 if self._samples is None else self._samples.end - self._samples.first

    def window(self, first: int, length: int, index: int, arrival: Arrival) -> Window:
        """Frames [first, first + length) (absolute) and the samples they cover."""
        start, end = first * self.cfg.frame_shift, covered_end(first + length, self.cfg)
        samples = NO_SAMPLES if self._samples is None else self._samples.span(start, end)
        return Window(index, self._frames.span(first, first + length), samples, start, end, arrival)

    def drop_before(self, frame: int) -> None:
        self._frames.drop_before(frame)
        if self._samples is not None:
            self._samples.drop_before(self._frames.first * self.cfg.frame_shift)


class SlidingWindows:
    """Collects frames and samples as they arrive and hands out windows once they are complete."""

    def __init__(self, spec: WindowSpec, cfg: FrontEndConfig, samples: bool = True):
        self.spec, self.cfg = spec, cfg
        self.buffer = FrameBuffer(cfg, samples)
        self._next = 0  # next window index not yet taken
        self._arrivals: list[Arrival] = []  # one per complete, untaken window, oldest first
        self.taken = 0  # windows handed out or skipped so far

    def add(self, frames: np.ndarray, samples: np.ndarray, arrival: Arrival) -> None:
        """Append the front end's new frames and the block's samples; stamp windows they complete."""
        before = self.ready
        self.buffer.add(frames, samples)
        self._arrivals += [arrival] * (self.ready - before)

    @property
    def ready(self) -> int:
        """Complete windows not yet taken."""
        excess = self.buffer.end_frame - self.spec.window
        complete = excess // self.spec.hop + 1 if excess >= 0 else 0
        return max(0, complete - self._next)

    @property
    def next_frame(self) -> int:
        """First frame of the next window not yet taken: nothing before it is needed again."""
        return self._next * self.spec.hop

    def take(self, newest_only: bool = False) -> tuple[list[Window], int]:
        """The ready windows, oldest first, and how many were skipped: with `newest_only`, all but those
        the newest block completed, so a backlog of older blocks is dropped while a hop shorter than a
        block (several windows per block) still gets every window of a stream that keeps up."""
        n = self.ready
        newest = sum(1 for arrival in self._arrivals[:n] if arrival is self._arrivals[n - 1]) if n else 0
        skipped = n - newest if newest_only else 0
        indices = range(self._next + skipped, self._next + n)
        windows = [self.buffer.window(i * self.spec.hop, self.spec.window, i, self._arrivals[i - self._next])
                   for i in indices]
        self._next += n
        self._arrivals = self._arrivals[n:]
        self.taken += n
        self.buffer.drop_before(self._next * self.spec.hop)
        return windows, skipped

    def finish(self, arrival: Arrival) -> Window | None:
        """At end of stream: a stream shorter than one window gets one window over all its frames.

        Otherwise nothing: after the last full window at most hop - 1 frames remain, which the
        previous window already nearly covers.
        """
        if self.taken or not self.buffer.end_frame:
            return None
        self.taken = 1
        return self.buffer.window(0, self.buffer.end_frame, 0, arrival)
