"""One place that turns a `--source` string into a source, so every command reads it the same way."""
from __future__ import annotations

import os
import re
from collections.abc import Callable

from emolive.engine.sources.base import DEFAULT_BLOCK_SIZE, AudioSource, AudioSourceError
from emolive.engine.sources.decoders import AUDIO_EXTENSIONS
from emolive.engine.sources.file import FileSource
from emolive.engine.sources.gstreamer import GStreamerSource, files_read
from emolive.engine.sources.microphone import NO_DEVICE_MESSAGE, MicrophoneOptions, MicrophoneSource, list_input_devices
from emolive.engine.sources.pcm import RawPcmSource

# A spec whose first word is a GStreamer element like these is a pipeline, not a file name.
_GST_ELEMENT = re.compile(r"^[a-z0-9]+(src|decodebin\d*)(\s|$)")
# Pipeline syntax beyond a "!" inside a word: a link "!" standing alone, or a property (location=…)
_GST_SYNTAX = re.compile(r"(^|\s)!(\s|$)|=")


def open_source(spec: str | None, *, fallback: str | os.PathLike[str] | None = None,
                microphone: MicrophoneOptions = MicrophoneOptions(), block_size: int = DEFAULT_BLOCK_SIZE,
                realtime: bool = False, raw_format: str = "f32le", raw_rate: float = 16000, raw_channels: int = 1,
                notify: Callable[[str], None] | None = None) -> AudioSource:
    """Open the source a user named.

    - None: the microphone (`microphone` names the device and channels and whether to wait for
      a lost device; `notify` hears about that), or, where there is none and no device was
      named, the file `fallback` paced at real time so it behaves like a live voice; the
      returned source's `description` says which was chosen.
    - "-": raw PCM on stdin (`raw_format` "f32le" or "s16le", at `raw_rate` Hz with `raw_channels` channels).
    - "gst:<description>", or a description with "!" or starting with an element such as
      `audiotestsrc` or `uridecodebin`: a GStreamer pipeline; not a missing audio file's name
      with "!" in a word ('Great take!.wav'), which is the file (and its error "not found").
    - anything else: an audio file.
    `realtime` paces any of these at real time (AudioSource.realtime).
    `microphone.channels` pick the channels mixed of a file or of stdin too; a device or `reconnect`
    named beside a source is refused, not ignored, as are channels for a pipeline (its own elements
    choose them).
    """
    if spec is not None:
        check_for_a_source(spec, microphone)
    if spec is None:
        # a device, its channels or --reconnect asked for are a microphone's, never silently the demo clip's
        if microphone.device is not None or microphone.channels or microphone.reconnect or list_input_devices():
            return MicrophoneSource(microphone, block_size=block_size, notify=notify)
        if fallback is None:
            raise AudioSourceError(NO_DEVICE_MESSAGE)
        return FileSource(fallback, block_size=block_size, realtime=True)
    if spec == "-":
        source: AudioSource = RawPcmSource(sample_format=raw_format, block_size=block_size, rate=raw_rate,
                                           channels=raw_channels, mixed=microphone.channels)
    elif is_pipeline(spec):
        source = GStreamerSource(spec.removeprefix("gst:"), block_size=block_size)
    else:
        source = FileSource(spec, block_size=block_size, channels=microphone.channels)
    source.realtime = realtime  # a pipe fed faster than real time (`cat call.raw |`) is paced as a file is
    return source


def files_of_source(spec: str) -> list[str]:
    """The files a `--source` reads, for an output's check that it is none of them: the file, the ones
    a pipeline names, or what stdin is (a file redirected in with `<`, seen through /dev/stdin)."""
    if spec == "-":
        return ["/dev/stdin"]
    if is_pipeline(spec):
        return files_read(spec.removeprefix("gst:"))
    return [spec]


def is_pipeline(spec: str) -> bool:
    """Whether a --source names a GStreamer pipeline rather than a file. A missing file is still a file
    when its name ends in an audio extension and has no pipeline syntax ('Great take!.wav'), so its
    error is "audio file not found", not gst-launch's "no element"."""
    if spec.startswith("gst:"):
        return True
    if os.path.exists(spec) or names_an_audio_file(spec):
        return False
    return "!" in spec or bool(_GST_ELEMENT.match(spec))


def names_an_audio_file(spec: str) -> bool:
    """An audio file name ('take 2!.flac'): an audio extension, and no "!" link or property of a pipeline."""
    return os.path.splitext(spec)[1].lower() in AUDIO_EXTENSIONS and not _GST_SYNTAX.search(spec)


def check_for_a_source(spec: str, microphone: MicrophoneOptions) -> None:
    """The microphone's options beside --source: channels for a file or stdin, nothing else."""
    named = [name for name, given in (("device", microphone.device is not None),
                                      ("reconnect", microphone.reconnect)) if given]
    if named:  # both spellings: a program's emolive.stream(file, microphone=...) was told of flags it never used
        flags = " and ".join(f"--{name}" for name in named)
        fields = ", ".join(f"{name}=" for name in named)
        raise AudioSourceError(f"{flags} (MicrophoneOptions' {fields}) {'is' if len(named) == 1 else 'are'} for the "
                               f"microphone, not for the source {spec}")
    if microphone.channels and is_pipeline(spec):
        raise AudioSourceError(f"--channel picks channels of the microphone, a file or stdin; a GStreamer pipeline "
                               f"picks its own (e.g. deinterleave), not --channel: --source {spec}")
