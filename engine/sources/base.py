"""The one interface every audio source implements, and the conversion they share.

Everything downstream (front end, runner) sees only float32 mono blocks at 16 kHz, so device
rates, channel counts and sample formats are dealt with here, once, at the edge.
"""
from __future__ import annotations

import abc
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soxr

from emolive.engine.closing import Closing
from emolive.engine.errors import EmoliveError
from emolive.engine.schema import printable

SAMPLE_RATE = 16000
DEFAULT_BLOCK_SIZE = 1600  # 100 ms: small enough for a 0.5 s hop, large enough to be cheap
# input rates any source may have: a 40 kB file claiming 1 Hz would otherwise resample into gigabytes
MIN_RATE, MAX_RATE = 1000, 768000
log = logging.getLogger(__name__)


def check_rate(rate: object, what: str) -> float:
    """`rate` as a float if it is a number of Hz in [MIN_RATE, MAX_RATE]; else one AudioSourceError line."""
    if not isinstance(rate, (int, float, np.integer, np.floating)) or isinstance(rate, bool):
        # "sample rate '16000' Hz is outside the 1000 to 768000 Hz" said the range of a value within it
        raise AudioSourceError(f"{what}: {printable(repr(rate), 80)} is a {type(rate).__name__}, not a number of Hz")
    if not MIN_RATE <= float(rate) <= MAX_RATE:  # NaN compares false
        raise AudioSourceError(f"{what}: sample rate {rate!r} Hz is outside the {MIN_RATE} to {MAX_RATE} Hz emolive "
                               "reads")
    return float(rate)


class AudioSourceError(EmoliveError):
    """A problem the user can fix (no device, bad file, failing pipeline); its text is one line."""


# the largest sample taken: 120 dB over full scale, far beyond any recording's overshoot, and below where the
# front end's power spectrum overflows (3e38 came out as a "neutral" estimate with numpy's overflow warnings);
# 16-bit values given as floats (up to 32768) pass, with the array source's warning
MAX_SAMPLE = 1e6
MAX_FLOAT_PEAK = 8.0  # samples beyond 18 dB over full scale: no recording's overshoot, a scale mix-up (warned about)


def narrow_to_float32(samples: np.ndarray) -> tuple[np.ndarray, int | None]:
    """`samples` as float32, and the first frame (row) that held a finite value float32 cannot hold (a
    64-bit float beyond ±3.4e38), None if none: the cast makes it Inf, and the NaN/Inf check after it
    would blame the input for a value it does not hold."""
    with np.errstate(over="ignore"):
        narrowed = samples.astype(np.float32, copy=False)
    if narrowed.dtype == samples.dtype:
        return narrowed, None
    overflowed = np.isinf(narrowed) & np.isfinite(samples)
    rows = overflowed.any(axis=1) if overflowed.ndim == 2 else overflowed
    return narrowed, int(np.argmax(rows)) if rows.any() else None


def out_of_range(what: str, at_s: float) -> AudioSourceError:
    """The error for a sample narrow_to_float32 found beyond float32's range, at `at_s` seconds."""
    return AudioSourceError(f"{what}: sample out of range at {at_s:.3f} s (beyond float32's ±3.4e38; "
                            "audio samples lie within ±1)")


@dataclass(frozen=True)
class SourceStats:
    """A snapshot of what a source has delivered and what it had to drop."""

    blocks: int
    samples: int
    dropped_blocks: int
    gaps: int = 0  # times a live device was lost and came back (MicrophoneOptions.reconnect)
    gap_s: float = 0.0  # wall time those gaps lasted: audio that was never captured


class AudioSource(Closing):
    """A stream of float32 mono 16 kHz blocks; the iterator ends cleanly when the audio ends.

    Blocks are non-empty 1-D arrays whose length may vary (resamplers and pipes do not keep
    block boundaries), so consumers must buffer, not assume a fixed size. Every block is
    checked for NaN/Inf here, once, so no implementation can forget it; the samples before
    the first one are delivered, as a damaged file's are.
    """

    description: str
    # The audio exists already (a file read as fast as it goes, an array): a read never waits on a
    # producer, so an offline Runner may hold windows until a model batch fills. A pipe or a device
    # is not: what it has delivered is evaluated as soon as nothing more is queued.
    at_hand: bool = False
    # The rate the audio was recorded at, where the source converts it (None: it delivers 16 kHz
    # itself); below 16 kHz the band above its half is empty whatever the resampler does.
    input_rate: float | None = None
    # Where the first sample sits in the recording, in seconds (a stretch of one): errors say when in
    # the recording they happened.
    start_s: float = 0.0
    # Paced at real time (`--realtime`): a block comes out once its last sample would have been captured,
    # counted from the first read, so a file, or a pipe fed faster than real time, behaves as a live voice
    realtime: bool = False

    def __init__(self, description: str) -> None:
        self.description = description
        self._blocks_out = 0
        self._samples_out = 0

    def blocks(self) -> Iterator[np.ndarray]:
        """Yield validated blocks until the source ends; raise AudioSourceError on failure."""
        loud_told = False
        for block in paced(self._read_blocks()) if self.realtime else self._read_blocks():
            magnitude = np.abs(block)
            sane = magnitude <= MAX_SAMPLE  # False for NaN and Inf too
            usable = block if sane.all() else block[:int(np.argmin(sane))]
            if not loud_told and usable.size and (peak := float(magnitude[:usable.size].max())) > MAX_FLOAT_PEAK:
                loud_told = True  # a float WAV of 16-bit values was scored without a word (arrays were warned)
                log.warning("%s: its samples peak at %.4g, beyond full scale (1): if they are 16-bit sample values "
                            "written as floats, divide them by 32768 (the estimates hear level)", self.description,
                            peak)
            if usable.size:
                self._blocks_out += 1
                self._samples_out += usable.size
                yield usable
            if usable.size < block.size:
                at, value = self.start_s + self._samples_out / SAMPLE_RATE, block[usable.size]
                if not np.isfinite(value):
                    raise AudioSourceError(f"{self.description}: non-finite sample (NaN or Inf) at {at:.3f} s")
                raise AudioSourceError(f"{self.description}: a sample of {value:.3g} at {at:.3f} s, where audio lies "
                                       "within ±1: no recording's level (samples written in other units?)")

    @property
    def stats(self) -> SourceStats:
        return SourceStats(self._blocks_out, self._samples_out, self._dropped_blocks(), *self._device_gaps())

    def _dropped_blocks(self) -> int:
        """Sources that can lose audio (a live device) override this; files and pipes never drop."""
        return 0

    def _device_gaps(self) -> tuple[int, float]:
        """(gaps, seconds) a reconnecting device was away; only such a device overrides this."""
        return 0, 0.0

    def stop_reading(self) -> None:
        """Make no read not yet begun: the run has stopped (Runner), and a descriptor the caller owns
        (stdin) keeps what comes next for its next reader. Only such a source has anything to do."""

    def discard_captured(self) -> None:
        """Let go of what a live device captured before the run begins: it is opened before the outputs
        (`--wait-subscriber` waits there), and the run's first seconds had been that wait's, stamped late.
        Sources that do not capture on their own have nothing to let go."""

    @abc.abstractmethod
    def _read_blocks(self) -> Iterator[np.ndarray]:
        """Yield float32 mono 16 kHz blocks (empty ones are skipped by `blocks`)."""


def distinct_channels(channels: tuple[int, ...], what: str) -> tuple[int, ...]:
    """`channels` if none is named twice (it counted double in the mix); else an AudioSourceError
    naming `what`. Batches check once before their first file: per file it was every row's error."""
    if twice := sorted({n for n in channels if channels.count(n) > 1}):
        raise AudioSourceError(f"{what}: channel {twice[0]} is given twice; name each channel once")
    return channels


def paced(blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """`blocks` of 16 kHz samples, each given once its last sample would have been captured by a live device
    that started with the first read (a block that comes later than that is given at once)."""
    started, emitted = time.monotonic(), 0
    for block in blocks:
        emitted += len(block)
        time.sleep(max(0.0, started + emitted / SAMPLE_RATE - time.monotonic()))
        yield block


class ToMono16k:
    """Streaming downmix (mean over channels) and soxr resampling to 16 kHz.

    At 16 kHz mono it passes samples through untouched, so the common case costs nothing and
    is bit-exact. Input below 16 kHz is converted like any other; whoever knows the model warns
    about it (engine.narrowband), once per stream or batch, from the source's `input_rate`.
    """

    def __init__(self, rate: float, what: str = "input", channels: tuple[int, ...] = ()) -> None:
        """`rate` is checked here, the one place every input passes (`what` names the input in the error);
        `channels` (1-based) are the ones mixed, all where empty: one side of a two-channel call."""
        self.rate = check_rate(rate, what)
        self.what, self.channels = what, distinct_channels(channels, what)
        self._mix: MixCheck | None = None  # made by the first block of several channels
        self._resampler = None if self.rate == SAMPLE_RATE else soxr.ResampleStream(self.rate, SAMPLE_RATE, 1,
                                                                                    dtype="float32")
        self._taken = self._given = 0  # input samples resampled, output samples given, so far
        self._unfinite: int | None = None  # the output sample at the first NaN or Inf of the input

    def __call__(self, frames: np.ndarray, last: bool = False) -> np.ndarray:
        """Convert (frames, channels) or (frames,) input; `last=True` flushes the resampler."""
        frames = self._picked(frames)
        mixed = frames.ndim == 2 and frames.shape[1] > 1
        mono = frames.mean(axis=1, dtype=np.float32) if mixed else frames.reshape(-1)
        if mixed or (last and self._mix is not None):
            self._watch_mix(frames if mixed else frames.reshape(0, self._mix.count), mono, last)
        mono = np.ascontiguousarray(mono, dtype=np.float32)
        if self._resampler is None:
            return mono
        return self._resampled(mono, last)

    def _resampled(self, mono: np.ndarray, last: bool) -> np.ndarray:
        """`mono` at 16 kHz. A NaN or Inf is resampled as 0 and put back as one NaN at its own time: the
        filter spread it over ~30 ms, so a stretch starting just after it failed, and the error said
        it came early (4.960 s for 4.99998 s)."""
        unfinite = ~np.isfinite(mono)
        if unfinite.any():
            if self._unfinite is None:
                self._unfinite = math.floor((self._taken + int(np.argmax(unfinite))) * SAMPLE_RATE / self.rate)
            mono = np.where(unfinite, np.float32(0), mono)
        self._taken += len(mono)
        out = self._resampler.resample_chunk(mono, last=last)
        if self._unfinite is not None and self._given <= self._unfinite < self._given + len(out):
            out[self._unfinite - self._given] = np.nan
        self._given += len(out)
        return out

    def _watch_mix(self, frames: np.ndarray, mono: np.ndarray, last: bool) -> None:
        """Hand the block to the downmix's check, made for the first block of several channels."""
        if self._mix is None:
            self._mix = MixCheck(frames.shape[1], self.rate, self.what, self.channels)
        self._mix.add(frames, mono, last)

    def _picked(self, frames: np.ndarray) -> np.ndarray:
        """The chosen channels' columns; a channel the input lacks is an error naming what it has (an empty
        block, a flush, has none to check)."""
        if not self.channels or not len(frames):
            return frames
        have = frames.shape[1] if frames.ndim == 2 else 1
        if max(self.channels) > have:
            raise AudioSourceError(f"{self.what} has {have} channel{'s' if have > 1 else ''}: channel "
                                   f"{max(self.channels)} is not one of them")
        return frames.reshape(len(frames), have)[:, [channel - 1 for channel in self.channels]]


class MixCheck:
    """Watches a downmix to mono once: a warning where mixing loses the voice.

    The mean of the channels is right for a stereo or array microphone, but not where a channel is
    phase-inverted (the mix cancels to near silence: no speech found, every estimate "not speech")
    or where only some channels carry sound (a call recorded one side per channel, a 5.1 file with
    dialogue in the centre: the mix is 20 log10(N/k) dB quieter, and the student hears level: one
    channel of eight moved valence by 0.6). Both were silent before. Judged once, on the first
    JUDGE_S seconds of input holding sound (or all of a shorter input, at its end), which the
    warning names: a side of a call that speaks only later (2 s judged it silent, and taking the
    other channel alone, as advised, lost its turn).
    """

    JUDGE_S = 30.0
    SOUND = 1e-8  # mean power of the loudest channel below which there is nothing to judge (-80 dBFS)
    SILENT_DB = 40.0  # a channel this far below the loudest one is silent
    CANCEL_DB = 10.0  # a mix this far below its channels' mean power: they cancel (independent ones lose 10 log10 N)

    def __init__(self, count: int, rate: float, what: str, picked: tuple[int, ...]) -> None:
        self.count, self.rate, self.what = count, rate, what  # channels mixed
        self.numbers = list(picked) or list(range(1, count + 1))  # the channels' own 1-based numbers
        self._sums, self._power = np.zeros(count), np.zeros(count)  # sums and sums of squares per channel
        self._mix_sum, self._mix_power = 0.0, 0.0  # and of the mix
        self._frames = 0
        self._done = False

    def add(self, frames: np.ndarray, mono: np.ndarray, last: bool) -> None:
        if self._done:
            return
        if len(frames):
            self._sums += frames.sum(0, dtype=np.float64)
            self._power += np.einsum("ij,ij->j", frames, frames, dtype=np.float64)
            self._mix_sum += float(mono.sum(dtype=np.float64))
            self._mix_power += float(np.dot(mono.astype(np.float64), mono))
            self._frames += len(frames)
        loudest = self._power.max() / max(self._frames, 1)
        if loudest > self.SOUND and (self._frames >= self.JUDGE_S * self.rate or last):
            self._done = True
            self._judge("throughout" if last else f"in its first {self._frames / self.rate:.0f} s")

    def _judge(self, span: str) -> None:
        # powers about the mean: a channel holding a DC offset and nothing else is silent too
        power = np.maximum(self._power / self._frames - (self._sums / self._frames) ** 2, 0.0)
        loudest = int(np.argmax(power))
        silent = [n for n, p in zip(self.numbers, power) if p < power[loudest] * 10 ** (-self.SILENT_DB / 10)]
        mix = max(self._mix_power / self._frames - (self._mix_sum / self._frames) ** 2, 0.0)
        if silent:
            sounding = [n for n in self.numbers if n not in silent]
            several = len(silent) > 1
            log.warning("%s: channel%s %s of %d %s silent %s, so the mono mix is %s quieter than channel %d, and "
                        "the estimates hear level: %s", self.what, "s" if several else "", "+".join(map(str, silent)),
                        self.count, "are" if several else "is", span, _decibels(power[loudest], mix),
                        self.numbers[loudest], _pick(sounding))
        elif mix < power.mean() * 10 ** (-self.CANCEL_DB / 10):
            log.warning("%s: its %d channels cancel each other when mixed to mono %s (the mix is %s below them: one "
                        "phase-inverted?): %s", self.what, self.count, span, _decibels(power.mean(), mix),
                        _pick([self.numbers[loudest]]))


def _decibels(power: float, below: float) -> str:
    """How far `below` lies under `power`, as '16 dB' ('over 120 dB' for an exact cancellation's zero)."""
    return "over 120 dB" if below <= power * 1e-12 else f"{10 * math.log10(power / below):.0f} dB"


def _pick(channels: list[int]) -> str:
    """How to take only `channels` in each interface that reads files or arrays."""
    flags = " ".join(f"--channel {n}" for n in channels)
    return (f"take {'channels' if len(channels) > 1 else 'channel'} {'+'.join(map(str, channels))} alone with {flags} "
            f"(emolive stream, score) or channels={channels} (emolive.analyze)")
