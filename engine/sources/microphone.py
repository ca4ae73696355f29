"""Live capture from a sound card through PortAudio (sounddevice).

The PortAudio callback does one thing, copy into a lock-free ring, so it never blocks and
never allocates beyond that copy; everything else (downmix, resampling, validation) happens
on the consumer's thread in `blocks()`.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from emolive.engine.sources.base import DEFAULT_BLOCK_SIZE, SAMPLE_RATE, AudioSource, AudioSourceError, ToMono16k
from emolive.engine.sources.ring import FrameRing

NO_DEVICE_MESSAGE = ("no audio input device found; list devices with `emolive devices`, "
                     "or read audio from a file with --source FILE")
RING_SECONDS = 4.0
POLL_SECONDS = 0.005
STALL_SECONDS = 5.0  # an open stream that delivers nothing this long is a dead device, not silence


@dataclass(frozen=True)
class InputDevice:
    """An input device as PortAudio reports it."""

    index: int
    name: str
    samplerate: float
    channels: int


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
    """Resolve an index, a case-insensitive name substring, or None (the system default)."""
    devices = list_input_devices()
    if not devices:
        raise AudioSourceError(NO_DEVICE_MESSAGE)
    if spec is None:
        default = _sounddevice().default.device[0]
        return next((d for d in devices if d.index == default), devices[0])
    if isinstance(spec, int) or spec.isdigit():
        matches = [d for d in devices if d.index == int(spec)]
    else:
        matches = [d for d in devices if spec.lower() in d.name.lower()]
    if len(matches) != 1:
        found = "no" if not matches else "several"
        raise AudioSourceError(f"{found} input devices match {spec!r}; list them with `emolive devices`")
    return matches[0]


class MicrophoneSource(AudioSource):
    """Capture from an input device at its native rate and channel count, delivered as 16 kHz mono."""

    def __init__(self, device: str | int | InputDevice | None = None, *, block_size: int = DEFAULT_BLOCK_SIZE,
                 ring_seconds: float = RING_SECONDS, stream_factory: Callable[..., Any] | None = None) -> None:
        """`ring_seconds` is how far the consumer may fall behind before blocks are dropped (and counted);
        `stream_factory` stands in for `sounddevice.InputStream` (tests drive its callback directly)."""
        self.device = device if isinstance(device, InputDevice) else find_input_device(device)
        super().__init__(f"microphone {self.device.name!r} ({self.device.samplerate:g} Hz, {self.device.channels} ch)")
        rate, channels = self.device.samplerate, self.device.channels
        self._ring = FrameRing(int(ring_seconds * rate), channels)
        self._convert = ToMono16k(rate)
        factory = stream_factory or _sounddevice().InputStream
        try:
            self._stream = factory(device=self.device.index, samplerate=rate, channels=channels, dtype="float32",
                                   blocksize=round(block_size * rate / SAMPLE_RATE), callback=self.callback)
            self._stream.start()
        except Exception as exc:  # PortAudioError and friends: the device refused, say which and why
            raise AudioSourceError(f"cannot open {self.description}: {exc}") from None
        self._closed = False

    def callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio's callback: copy into the ring and count losses; never blocks, never raises."""
        if status.input_overflow:
            self._ring.count_drop()
        self._ring.write(indata)

    def _dropped_blocks(self) -> int:
        return self._ring.dropped_writes

    def _read_blocks(self) -> Iterator[np.ndarray]:
        last_data = time.monotonic()
        while not self._closed:
            active = self._stream.active  # before reading, so nothing written after it is missed
            frames = self._ring.read()
            if len(frames):
                last_data = time.monotonic()
                yield self._convert(frames)
            elif not active:
                yield self._convert(frames, last=True)
                return
            elif time.monotonic() - last_data > STALL_SECONDS:
                raise AudioSourceError(f"{self.description} delivered no audio for {STALL_SECONDS:g} s")
            else:
                time.sleep(POLL_SECONDS)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._stream.stop()
            self._stream.close()
