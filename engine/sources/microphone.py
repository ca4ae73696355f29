"""Live capture from a sound card through PortAudio (sounddevice).

The PortAudio callback does one thing, copy into a lock-free ring, so it never blocks and
never allocates beyond that copy; everything else (channel choice, downmix, resampling,
validation) happens on the consumer's thread in `blocks()`.

Channels: only the channels asked for are mixed. PortAudio opens the first N channels of a
device, so the stream opens up to the highest one asked for and the consumer picks the columns.
By default a mono or stereo device is mixed whole and a larger one gives its first channel: a
PulseAudio source reports 32 channels and an audio interface 8-18, most of them silent or other
microphones, and their mean is not anyone's voice.

Rate: the device's own default rate (PortAudio's, which for a sound card is what the hardware
runs at) is asked for first, so the device does no resampling of its own; soxr turns it into
16 kHz here, as for every other source.

A device that disappears (USB microphone unplugged, sound server stopped) shows up as a stream
that is no longer active, or one that stalls; that ends the run with an AudioSourceError, or,
with `reconnect`, the source closes it, waits for the device to come back (PortAudio is
re-initialised so that a re-plugged device is seen) and goes on, counting the gap.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from emolive.engine.sources.base import (DEFAULT_BLOCK_SIZE, SAMPLE_RATE, AudioSource, AudioSourceError, ToMono16k,
                                         distinct_channels)
from emolive.engine.sources.ring import FrameRing

NO_DEVICE_MESSAGE = ("no audio input device found; list devices with `emolive devices`, "
                     "or read audio from a file with --source FILE")
RING_SECONDS = 4.0
POLL_SECONDS = 0.005
STALL_SECONDS = 5.0  # an open stream that delivers nothing this long is a dead device, not silence
QUIET_STEP_S = 0.5  # the most one poll adds to that time: more between two polls is this process stopped
RECONNECT_POLL_SECONDS = 0.5  # how often a lost device is looked for again
FALLBACK_RATES = (48000.0, 44100.0, 32000.0, 16000.0)  # tried in order when the default rate is refused
MIXED_WHOLE_CHANNELS = 2  # devices with at most this many channels are mixed whole by default


@dataclass(frozen=True)
class InputDevice:
    """An input device as PortAudio reports it."""

    index: int
    name: str
    samplerate: float
    channels: int

    @property
    def default_channels(self) -> tuple[int, ...]:
        """1-based channels used when none are asked for: all of a mono or stereo device, else the first."""
        count = self.channels if self.channels <= MIXED_WHOLE_CHANNELS else 1
        return tuple(range(1, count + 1))


@dataclass(frozen=True)
class MicrophoneOptions:
    """What the user chose about the microphone; travels unchanged from the CLI or GUI to the source."""

    device: str | int | InputDevice | None = None  # index, name substring, None (the system default), or resolved
    channels: tuple[int, ...] = ()  # 1-based channels to mix; empty: InputDevice.default_channels
    reconnect: bool = False  # wait for a lost device to come back instead of ending the run


def describe_channels(channels: tuple[int, ...], total: int) -> str:
    """'channel 1 of 32', 'channels 1+2 of 2 mixed': what `devices`, the startup line and the GUI show."""
    if len(channels) == 1:
        return f"channel {channels[0]} of {total}"
    return f"channels {'+'.join(map(str, channels))} of {total} mixed"


def _sounddevice() -> ModuleType:
    """Import sounddevice lazily so a missing PortAudio library is a clear error, not an import crash."""
    try:
        import sounddevice
    except OSError as exc:
        raise AudioSourceError(f"PortAudio is not available ({exc}); install it with `apt install libportaudio2`") from None
    return sounddevice


def list_input_devices() -> list[InputDevice]:
    """All devices with at least one input channel (empty on a machine without a sound card)."""
    sd = _sounddevice()
    return [InputDevice(d["index"], d["name"], float(d["default_samplerate"]), int(d["max_input_channels"]))
            for d in sd.query_devices() if d["max_input_channels"] > 0]


def find_input_device(spec: str | int | None = None) -> InputDevice:
    """Resolve an index, a case-insensitive name (whole, else a part of one), or None (the system default)."""
    devices = list_input_devices()
    if not devices:
        raise AudioSourceError(NO_DEVICE_MESSAGE)
    if spec is None:
        default = _sounddevice().default.device[0]
        return next((d for d in devices if d.index == default), devices[0])
    if isinstance(spec, str) and not spec.strip():  # a script's unset variable: "several devices match ''"
        raise AudioSourceError("an empty device name matches every device: give an index or a part of a name "
                               "(`emolive devices` lists them), or leave --device out for the default")
    if isinstance(spec, int) or spec.isdigit():
        matches = [d for d in devices if d.index == int(spec)]
    else:  # a name given whole wins over the names it is part of ("pulse" beside "pulsemic")
        matches = [d for d in devices if d.name.lower() == spec.lower()] or \
            [d for d in devices if spec.lower() in d.name.lower()]
    if len(matches) != 1:
        found = "no" if not matches else "several"
        raise AudioSourceError(f"{found} input devices match {spec!r}; list them with `emolive devices`")
    return matches[0]


@contextlib.contextmanager
def _c_stderr_silenced() -> Iterator[None]:
    """Descriptor 2 to /dev/null for a moment: ALSA and PortAudio write each failed open of a device that
    is away to it from C, and the polls of a reconnecting run flooded the terminal with them. Only around
    those probes, where nothing of emolive's own is said (the outage was said before, the return after)."""
    if sys.stderr is not None:
        sys.stderr.flush()
    try:
        saved, quiet = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except OSError:  # no descriptor 2 at all (`2>&-`): nothing to silence
        yield
        return
    try:
        os.dup2(quiet, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(quiet)


def choose_rate(device: InputDevice, accepts: Callable[[float], bool]) -> float:
    """The device's default rate if it accepts it, else the first of FALLBACK_RATES it accepts."""
    for rate in (device.samplerate, *FALLBACK_RATES):
        if accepts(rate):
            return rate
    raise AudioSourceError(f"input device {device.name!r} accepts none of the rates "
                           f"{', '.join(f'{r:g}' for r in (device.samplerate, *FALLBACK_RATES))} Hz")


def check_channels(device: InputDevice, channels: tuple[int, ...]) -> tuple[int, ...]:
    """The channels to mix, defaulted and checked against the device (AudioSourceError names the range). A
    channel named twice is refused, as for a file (it had been dropped without a word here)."""
    chosen = distinct_channels(channels, f"input device {device.name!r}") or device.default_channels
    bad = [c for c in chosen if not 1 <= c <= device.channels]
    if bad:  # "channel", not "--channel": a Python caller names none
        raise AudioSourceError(f"input device {device.name!r} has channels 1-{device.channels}; "
                               f"channel {bad[0]} does not exist")
    return chosen


class MicrophoneSource(AudioSource):
    """Capture the chosen channels of an input device at a rate it supports, delivered as 16 kHz mono."""

    def __init__(self, options: MicrophoneOptions = MicrophoneOptions(), *,
                 block_size: int = DEFAULT_BLOCK_SIZE, ring_seconds: float = RING_SECONDS,
                 notify: Callable[[str], None] | None = None, stream_factory: Callable[..., Any] | None = None) -> None:
        """`notify` receives one-line messages about a lost and recovered device; `ring_seconds` is how
        far the consumer may fall behind before blocks are dropped (and counted); `stream_factory`
        stands in for `sounddevice.InputStream` (tests drive its callback directly; the rate is then
        the device's default)."""
        self.options = options
        self._block_size, self._ring_seconds = block_size, ring_seconds
        self._notify = notify or (lambda message: None)
        self._factory = stream_factory
        self._closed = False
        self._stream: Any = None
        self._dropped_before = 0  # drops counted by the rings of streams lost earlier
        self._gaps, self._gap_s = 0, 0.0
        super().__init__("microphone")
        device = options.device
        self._open(device if isinstance(device, InputDevice) else find_input_device(device))

    def _open(self, device: InputDevice) -> None:
        """Open and start a stream on `device` with the chosen channels and rate."""
        sd = None if self._factory is not None else _sounddevice()
        channels = check_channels(device, self.options.channels)
        opened = max(channels)
        if sd is None:
            rate = device.samplerate
        else:
            rate = choose_rate(device, lambda r: _accepts(sd, device.index, opened, r))
        self.device, self.channels, self.rate = device, channels, rate
        how = "its default rate" if rate == device.samplerate else f"its default {device.samplerate:g} Hz is refused"
        resampled = "no resampling" if rate == SAMPLE_RATE else f"soxr to {SAMPLE_RATE} Hz"
        self.description = (f"microphone {device.name!r} ({describe_channels(channels, device.channels)}, "
                            f"{rate:g} Hz, {how}; {resampled})")
        self._columns = None if channels == tuple(range(1, opened + 1)) else [c - 1 for c in channels]
        self._ring = FrameRing(int(self._ring_seconds * rate), opened)
        self._convert = ToMono16k(rate, f"microphone {device.name!r}")
        self.input_rate = self._convert.rate
        factory = self._factory or sd.InputStream
        try:
            stream = factory(device=device.index, samplerate=rate, channels=opened, dtype="float32",
                             blocksize=round(self._block_size * rate / SAMPLE_RATE), callback=self.callback)
            stream.start()
        except Exception as exc:  # PortAudioError and friends: the device refused, say which and why
            raise AudioSourceError(f"cannot open {self.description}: {exc}") from None
        self._stream = stream

    def callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio's callback: copy into the ring and count losses; never blocks, never raises."""
        if status.input_overflow:
            self._ring.count_drop()
        self._ring.write(indata)

    def _dropped_blocks(self) -> int:
        return self._dropped_before + self._ring.dropped_writes

    def discard_captured(self) -> None:
        """The ring's audio goes, and so do the writes it refused when full (a wait of 8 s had counted 25
        blocks dropped, of audio before the run)."""
        self._ring.read()
        self._dropped_before -= self._ring.dropped_writes

    def _device_gaps(self) -> tuple[int, float]:
        return self._gaps, self._gap_s

    def _read_blocks(self) -> Iterator[np.ndarray]:
        """Blocks as they are captured; with --reconnect a device lost is waited for, and it is back once
        its audio flows again, not once it opens: a suspended sound server opened at once and delivered
        nothing, so one 25 s outage read as four gaps of 5.6 s, each said "back"."""
        last_data = polled = time.monotonic()
        quiet = 0.0  # seconds of polls that found the ring empty since the last audio
        lost_since: float | None = None  # the last audio before a loss, until audio comes again
        while not self._closed:
            active = self._stream.active  # before reading, so nothing written after it is missed
            frames = self._ring.read()
            now = time.monotonic()
            # a poll counts at most QUIET_STEP_S: a process stopped (Ctrl-Z, SIGSTOP) froze the callback too,
            # and on SIGCONT found the ring empty 6 s after the last audio: "delivered no audio for 5 s"
            quiet = 0.0 if len(frames) else quiet + min(now - polled, QUIET_STEP_S)
            polled = now
            if len(frames):
                last_data = now
                if lost_since is not None:
                    self._back(last_data - lost_since)
                    lost_since = None
                yield self._convert(frames if self._columns is None else frames[:, self._columns])
            elif active and quiet <= STALL_SECONDS:
                time.sleep(POLL_SECONDS)
            else:
                yield self._convert(frames, last=True)  # what was captured before the loss is all delivered
                if self.options.reconnect:
                    if lost_since is None:
                        lost_since = last_data
                        self._notify(f"{self.description} was lost; waiting for it to come back")
                    self._reconnect()
                    last_data = polled = time.monotonic()
                    quiet = 0.0
                    continue
                why = "stopped" if not active else f"delivered no audio for {STALL_SECONDS:g} s"
                raise AudioSourceError(f"{self.description} {why} (unplugged, or its sound server stopped); "
                                       "--reconnect waits for it to come back")

    def _reconnect(self) -> None:
        """Drop the dead stream, then look for the device every RECONNECT_POLL_SECONDS until it opens again."""
        sd = _sounddevice()
        try:
            self._stream.abort()  # not stop(): a stalled stream has no buffers worth waiting for
            self._stream.close()
        except sd.PortAudioError:  # a stream whose device is gone may refuse to stop; it is dropped anyway
            pass
        self._stream = None
        self._dropped_before += self._ring.dropped_writes
        while not self._closed:
            time.sleep(RECONNECT_POLL_SECONDS)
            with _c_stderr_silenced():  # each failed probe: lines from ALSA and PortAudio (~1,500 a minute)
                sd._terminate()  # PortAudio lists devices once, when initialised: re-list to see a re-plugged one
                sd._initialize()
                same = [d for d in list_input_devices() if d.name == self.device.name]
                try:
                    if same:
                        self._open(same[0])
                except AudioSourceError:  # listed but not yet usable (a sound server still starting)
                    same = []
            if not same:
                continue
            if self._closed:  # close() came while the stream was opening: it saw no stream to stop
                self._stream.stop()
                self._stream.close()
            return

    def _back(self, gap: float) -> None:
        """The device's audio flows again after `gap` seconds without any: one gap, counted and said."""
        self._gaps, self._gap_s = self._gaps + 1, self._gap_s + gap
        self._notify(f"{self.description} is back after {gap:.1f} s "
                     f"({self._gaps} gap{'s' if self._gaps > 1 else ''}, {self._gap_s:.1f} s in all)")

    def close(self) -> None:
        """Stop the stream. The resampler is let go too: a reader thread still waiting for a lost
        device (`_reconnect`, up to a poll and a PortAudio re-listing behind) held it while the
        interpreter exited, and soxr's bindings then printed a "leaked instance" dump after Ctrl-C."""
        if not self._closed:
            self._closed = True
            if self._stream is not None:
                self._stream.stop()
                self._stream.close()
            self._convert = None


def _accepts(sd: ModuleType, index: int, channels: int, rate: float) -> bool:
    """Whether PortAudio would open `channels` input channels of device `index` at `rate`."""
    try:
        sd.check_input_settings(device=index, channels=channels, samplerate=rate, dtype="float32")
    except sd.PortAudioError:
        return False
    return True
