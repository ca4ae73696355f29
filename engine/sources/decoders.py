"""Decoders behind every audio file the engine and the trainer read: libsndfile, or FFmpeg (PyAV).

libsndfile reads the lossless formats exactly and fast (WAV, FLAC, AIFF, Ogg), but not the
containers phones, browsers and video calls write (.webm, .m4a, .mp4), and its MP3 reader stops
at the first bad frame without saying so. So libsndfile reads what it recognises except MPEG
audio; everything else goes to FFmpeg through PyAV, whose wheels carry their own FFmpeg (no
system codec packages). The choice is made on the content, not the file name.

A decoder never cuts silently: FFmpeg decodes past a damaged packet, and once the file ends the
damage (packets it could not decode, or audio ending before the length the header declares) is
raised as one AudioSourceError, after every sample that could be read has been delivered.
"""
from __future__ import annotations

import abc
import os
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import soundfile as sf

from emolive.engine.closing import Closing
from emolive.engine.sources.base import AudioSourceError

AudioInput = str | os.PathLike[str] | BinaryIO
# audio shorter than its header declares by more than this is reported: containers round durations to
# whole packets (an AAC packet is 1024 samples, an Opus one up to 120 ms) and count encoder priming
LENGTH_SLACK_S, LENGTH_SLACK_FRACTION = 0.25, 0.01
# file name endings a folder search takes as audio: libsndfile's formats and the containers FFmpeg opens
AUDIO_EXTENSIONS = frozenset({f".{name.lower()}" for name in sf.available_formats()} | {
    ".aif", ".oga", ".opus", ".mp3", ".m4a", ".mp4", ".aac", ".webm", ".mka", ".mkv", ".mov", ".3gp",
    ".amr", ".wma", ".wmv", ".ac3", ".mp2", ".m4b"})


class Decoder(Closing):
    """Blocks of float32 samples shaped (frames, channels) at `rate`, in order, until the audio ends."""

    rate: float

    @abc.abstractmethod
    def blocks(self, frames_per_block: int) -> Iterator[np.ndarray]:
        """Yield the audio (blocks of about `frames_per_block` frames); AudioSourceError on damage."""


def open_decoder(file: AudioInput, what: str) -> Decoder:
    """The decoder for `file` (a path or a seekable binary file object); `what` names it in errors."""
    sound = None if _is_mpeg_audio(file) else _sndfile_or_none(file)
    if sound is not None:
        return SndfileDecoder(sound, what)
    if not isinstance(file, (str, os.PathLike)):
        file.seek(0)
    return FFmpegDecoder(file, what)


def _is_mpeg_audio(file: AudioInput) -> bool:
    """An MP3 (an ID3 tag or an MPEG frame sync first), told apart before libsndfile probes it: its
    mpg123 reader would print warnings of its own on stderr and then cut the file where it errs."""
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as f:
            head = f.read(3)
    else:
        head = file.read(3)
        file.seek(0)
    return head == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


def _sndfile_or_none(file: AudioInput) -> sf.SoundFile | None:
    """The file opened by libsndfile, or None where it does not know the format (or the MPEG audio
    the sniff above missed)."""
    try:
        sound = sf.SoundFile(file)
    except (sf.SoundFileError, RuntimeError):
        return None
    if sound.subtype.startswith("MPEG_LAYER"):
        sound.close()
        return None
    return sound


class SndfileDecoder(Decoder):
    """A file libsndfile has opened; it knows the length, so an empty file is refused here."""

    def __init__(self, sound: sf.SoundFile, what: str) -> None:
        self._sound, self.what, self.rate = sound, what, sound.samplerate
        if sound.frames == 0:
            sound.close()
            raise AudioSourceError(f"{what}: the audio contains no samples")

    def blocks(self, frames_per_block: int) -> Iterator[np.ndarray]:
        while True:
            try:
                frames = self._sound.read(frames_per_block, dtype="float32", always_2d=True)
            except sf.SoundFileError as exc:
                raise AudioSourceError(f"{self.what} is damaged: {_sndfile_reason(exc)}") from None
            if len(frames):
                yield frames
            if len(frames) < frames_per_block:
                return

    def close(self) -> None:
        self._sound.close()


class FFmpegDecoder(Decoder):
    """The first audio stream of any container FFmpeg opens, as float32 at its own rate and channels."""

    def __init__(self, file: AudioInput, what: str) -> None:
        import av  # the FFmpeg bindings load only for files libsndfile does not read

        self.what, self._av = what, av
        try:
            self._container = av.open(file, "r")
        except (av.FFmpegError, UnicodeDecodeError) as exc:
            raise AudioSourceError(f"cannot read {what} as audio: {_ffmpeg_reason(exc)}") from None
        decodable = [stream for stream in self._container.streams.audio if stream.codec_context is not None]
        if not decodable:
            found = "an audio stream of an unknown codec" if self._container.streams.audio else "no audio stream"
            self._container.close()
            raise AudioSourceError(f"{what}: {found} in the file")
        self._stream = decodable[0]
        self.rate = float(self._stream.codec_context.sample_rate or 0)  # its bounds: ToMono16k's check
        if self.rate <= 0:
            self._container.close()
            raise AudioSourceError(f"{what}: the audio stream declares no sample rate")
        duration = self._container.duration  # microseconds, or None for a live recording never finalised
        self._declared_s = duration / 1e6 if duration and duration > 0 else None

    def blocks(self, frames_per_block: int) -> Iterator[np.ndarray]:
        """FFmpeg's frames as they come (frames_per_block is libsndfile's business: packets set the size)."""
        av = self._av
        planar = av.AudioResampler(format="fltp", rate=int(self.rate))  # keeps the channels; one rate throughout
        decoded, failed, first_failure, unreadable = 0, 0, None, None
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as exc:  # the container itself breaks here: nothing after it can be found
                unreadable = (decoded / self.rate, _ffmpeg_reason(exc))
                break
            try:
                frames = [out for frame in packet.decode() for out in planar.resample(frame)]
            except av.FFmpegError as exc:  # one damaged packet: counted, and decoding goes on after it
                failed += 1
                first_failure = first_failure or (decoded / self.rate, _ffmpeg_reason(exc))
                continue
            for frame in frames:
                decoded += frame.samples
                yield frame.to_ndarray().T
        for frame in planar.resample(None):
            decoded += frame.samples
            yield frame.to_ndarray().T
        if unreadable is not None:
            at, reason = unreadable
            raise AudioSourceError(f"{self.what} is damaged: the container cannot be read past {at:.2f} s ({reason})")
        if decoded == 0 and not failed:
            raise AudioSourceError(f"{self.what}: the audio contains no samples")
        if failed:
            at, reason = first_failure
            raise AudioSourceError(f"{self.what} is damaged: {failed} packet(s) could not be decoded, the first "
                                   f"at {at:.2f} s ({reason}); the audio around them was skipped")
        declared = self._declared_s
        if declared is not None and decoded / self.rate < declared - max(LENGTH_SLACK_S, LENGTH_SLACK_FRACTION * declared):
            raise AudioSourceError(f"{self.what} is damaged or truncated: its audio ends at {decoded / self.rate:.2f} s "
                                   f"of the {declared:.2f} s its header declares")

    def close(self) -> None:
        self._container.close()


def read_whole(file: AudioInput, what: str) -> tuple[np.ndarray, float]:
    """All of a file's samples, (frames, channels) float32, and its rate: the trainer's reader."""
    with open_decoder(file, what) as decoder:
        blocks = list(decoder.blocks(1 << 16))
        return np.concatenate(blocks) if blocks else np.zeros((0, 1), np.float32), decoder.rate


def _sndfile_reason(exc: Exception) -> str:
    """libsndfile's own explanation without the repeated file name."""
    return getattr(exc, "error_string", None) or str(exc)


def _ffmpeg_reason(exc: Exception) -> str:
    """FFmpeg's explanation without the file name and call PyAV append."""
    return getattr(exc, "strerror", None) or str(exc)
