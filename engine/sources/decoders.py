"""Decoders behind every audio file the engine and the trainer read: libsndfile, or FFmpeg (PyAV).

libsndfile reads the lossless formats exactly and fast (WAV, FLAC, AIFF, Ogg), but not the
containers phones, browsers and video calls write (.webm, .m4a, .mp4), and its MP3 reader stops
at the first bad frame without saying so. So libsndfile reads what it recognises except MPEG
audio; everything else goes to FFmpeg through PyAV, whose wheels carry their own FFmpeg (no
system codec packages). The choice is made on the content, not the file name.

A decoder never cuts silently: FFmpeg decodes past a damaged packet, libsndfile's reads are retried
in smaller pieces up to the damage (a FLAC's then go on in FFmpeg, which regains sync), and once
the audio ends the damage (what could not be decoded, or audio ending before the length the header
declares) is raised as one AudioSourceError, after every sample that could be read has been
delivered. libsndfile itself reads a cut WAV, AIFF or Ogg file to its end without a word: it only
notes, in the log it keeps of the header, a chunk that declares more bytes than the file holds or an
Ogg stream without its end mark, so that log is read; a MATLAB file's matrix size and a NIST
header's sample count, which it does not check, are read too, and an Ogg file's pages are checked
(engine.sources.ogg_pages): libsndfile drops a damaged one silently, and reads only the first stream
of a chain, which FFmpeg then reads whole.
Formats whose audio simply runs to the end of the file (IRCAM, PAF, PVF, XI) declare no length: a
cut there cannot be told from a shorter recording.
"""
from __future__ import annotations

import abc
import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import soundfile as sf

from emolive.engine.closing import Closing
from emolive.engine.sources.base import AudioSourceError, narrow_to_float32, out_of_range
from emolive.engine.sources.ogg_pages import OggDamage, OggScan, scan_pages

if TYPE_CHECKING:
    import av

AudioInput = str | os.PathLike[str] | BinaryIO
log = logging.getLogger(__name__)
# audio shorter than its container's duration by more than this is reported: containers round durations to
# whole packets (an AAC packet is 1024 samples, an Opus one up to 120 ms) and count encoder priming
LENGTH_SLACK_S, LENGTH_SLACK_FRACTION = 0.25, 0.01
# a header's own frame count (CAF, AVI) is exact for PCM; for a codec it may count the encoder's priming
# (AAC: 2112 samples, about two packets) and the last packet whole, so it is held within this many packets
HEADER_SLACK_PACKETS = 3
# a frame whose timestamp lies more than this past the audio before it (a WebRTC recording's pause in
# transmission, audio that starts under a video's later) is preceded by silence filling the gap: the
# estimates after it had come that much early, and the audio was called cut at its end. Below it:
# encoders' priming and timestamp rounding, which move nothing
GAP_FILL_S = 0.1
BITRATE_GUESS = "Estimating duration from bitrate"  # FFmpeg's warning where a file declares no length
# libsndfile's log line where a chunk holding the audio declares more bytes than follow it in the file,
# e.g. "data : 229374 (should be 114665)": WAV's data, AIFF's SSND, 8SVX's BODY, AU's Data Size, and the
# outer chunk of W64 (lower-case riff) and RF64, which are all it checks there; WAV's outer RIFF is left
# out, as some writers count its 8-byte header in, and "data" checks the audio itself
SHORT_CHUNK = re.compile(r"^\s*(?:data|SSND|BODY|Data Size|riff|Riff size)\s*:\s*(\d+) \(should be (\d+)\)", re.M)
# a chunk size off by this many bytes is a writer's quirk (a chunk header or pad byte counted in, up to
# W64's 24 bytes), not a cut: no more than 2 ms of 16-bit 16 kHz audio, less than one 25 ms frame
SIZE_QUIRK_BYTES = 64
# sizes a writer that cannot seek back leaves in the header for "unknown" (ffmpeg to a pipe 0xFFFFFFFF,
# sox 0x7FFFF000, GStreamer's wavenc 0x7FFF0000): from here up a size declares nothing; a cut WAV of
# 2 GiB or more goes unnoticed
UNKNOWN_SIZE = 0x7FFF0000
# libsndfile's log for an Ogg stream whose last page is not marked last (its Vorbis and its Opus reader)
OGG_END_MISSING = re.compile(r"lacks an end-of-stream bit|ended unexpectedly without an End-Of-Stream flag")
# libsndfile's log where a reader saw the file end early itself (VOC's blocks, MAT4's matrix, and others);
# not its WAV reader's "data chunk seems to be truncated", which it also says of a whole odd-sized GSM 6.10 chunk
SEEMS_TRUNCATED = re.compile(r"(?<!chunk )seems to be (?:a )?truncated", re.I)
# a MATLAB file's matrices in libsndfile's log ("Rows : 2  Cols : 32000"): the last is the audio, rows x cols values
MATRIX = re.compile(r"Rows\s*:\s*(\d+)\s+Cols\s*:\s*(\d+)")
NIST_SAMPLES = re.compile(rb"\nsample_count -i (\d+)\n")  # a NIST SPHERE header's frame count
HEAD_BYTES = 1024  # the start of a file read to tell its format: a NIST SPHERE header's usual size
UNKNOWN_FRAMES = 2**63 - 1  # libsndfile's frame count (SF_COUNT_MAX) for a file that does not declare its length
FLAC_MAX_BLOCK = 16384  # frames in a FLAC frame at most (the subset's bound above 48 kHz; 4608 at or below)
SALVAGE_SPLIT = 16  # a failed read is read again in this many pieces, and a failing piece likewise, down to one frame
# file name endings a folder search takes as audio: libsndfile's format names and the endings its formats'
# files carry (.sph: NIST SPHERE, the LDC corpora's; .sf: IRCAM; .snd: AU), and the audio and video
# containers FFmpeg opens (a video's first audio stream is read; .ts is also TypeScript's, which gets an error row)
AUDIO_EXTENSIONS = frozenset({f".{name.lower()}" for name in sf.available_formats()} | {
    ".aifc", ".snd", ".sph", ".sf", ".iff", ".8svx", ".mat", ".wv", ".ape", ".tta", ".spx", ".gsm",
    ".aif", ".oga", ".opus", ".mp3", ".m4a", ".mp4", ".aac", ".webm", ".mka", ".mkv", ".mov", ".3gp",
    ".amr", ".wma", ".wmv", ".ac3", ".mp2", ".m4b", ".avi", ".mpg", ".mpeg", ".m4v", ".ts", ".mts", ".m2ts",
    ".flv", ".ogv", ".3g2", ".asf", ".vob", ".weba", ".wave", ".caf", ".w64", ".rf64", ".mp1", ".m4r",
    ".dts", ".eac3", ".mxf", ".f4v", ".m4p"})


class Decoder(Closing):
    """Blocks of float32 samples shaped (frames, channels) at `rate`, in order, until the audio ends."""

    rate: float

    @abc.abstractmethod
    def blocks(self, frames_per_block: int) -> Iterator[np.ndarray]:
        """Yield the audio (blocks of about `frames_per_block` frames); AudioSourceError on damage."""


def open_decoder(file: AudioInput, what: str) -> Decoder:
    """The decoder for `file` (a path or a seekable binary file object); `what` names it in errors."""
    try:
        head = _part(file, HEAD_BYTES)
    except OSError as exc:  # the first open of the file: permissions, a folder, a disk error
        raise AudioSourceError(f"cannot read {what}: {exc.strerror or exc}") from None
    if not head:  # said so: an empty .flac was "the audio stream declares no sample rate"
        raise AudioSourceError(f"{what} is empty (0 bytes)")
    # the pages are checked before libsndfile opens the file: on a file object the check's reads and seeks
    # moved it under libsndfile's feet, and a whole Vorbis file came out short, then called truncated
    pages = _ogg_pages(file) if head[:4] == b"OggS" else OggScan(None)
    sound = None if _is_mpeg_audio(head) or pages.chained else _sndfile_or_none(file)  # FFmpeg reads a whole chain
    if sound is not None:
        # a damaged FLAC frame ends libsndfile's decoding (it loses sync for good); FFmpeg reads on past it
        past_damage = (lambda: _ffmpeg_decoder(file, what)) if sound.format == "FLAC" else None
        return SndfileDecoder(sound, what, head, pages.damage, past_damage, ogg_closed=pages.closed)
    return _ffmpeg_decoder(file, what, pages.chain_damage)


def _ffmpeg_decoder(file: AudioInput, what: str, damaged_page: int | None = None) -> FFmpegDecoder:
    if not isinstance(file, (str, os.PathLike)):
        file.seek(0)
    return FFmpegDecoder(file, what, damaged_page)


@contextlib.contextmanager
def _from_start(file: AudioInput) -> Iterator[BinaryIO]:
    """The file open for reading at its start; a file object given is left at its start after."""
    f = open(file, "rb") if isinstance(file, (str, os.PathLike)) else file
    try:
        f.seek(0)
        yield f
    finally:
        if f is file:
            f.seek(0)
        else:
            f.close()


def _part(file: AudioInput, size: int) -> bytes:
    """The file's first `size` bytes, fewer if it is shorter."""
    with _from_start(file) as f:
        return f.read(size)


def _ogg_pages(file: AudioInput) -> OggScan:
    with _from_start(file) as f:
        return scan_pages(f)


def _is_mpeg_audio(head: bytes) -> bool:
    """An MP3 (an ID3 tag or an MPEG frame sync first), told apart before libsndfile probes it: its
    mpg123 reader would print warnings of its own on stderr and then cut the file where it errs."""
    return head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


def _sndfile_or_none(file: AudioInput) -> sf.SoundFile | None:
    """The file opened by libsndfile, or None where it does not know the format, or reads it worse
    than FFmpeg: the MPEG audio the sniff above missed, a FLAC that does not declare its length
    (written to a pipe), which libsndfile can neither seek in nor read to its end without an error,
    and a file it finds no frames in: a WAV whose writer left its sizes 0 holds audio all the same,
    which FFmpeg reads to the file's end (and an empty one it reports as such).

    A path goes to libsndfile as the bytes of its name on POSIX: soundfile encodes a str strictly, and
    a name that is not UTF-8 (b'\\xff', which Python holds as a lone surrogate) failed with a traceback
    that ended a whole `score` batch. (PyAV encodes such names itself.)"""
    if isinstance(file, (str, os.PathLike)) and os.name == "posix":
        file = os.fsencode(file)
    try:
        sound = sf.SoundFile(file)
    except (sf.SoundFileError, RuntimeError, TypeError):  # TypeError: soundfile takes a '.raw' name as headerless
        return None
    if sound.subtype.startswith("MPEG_LAYER") or sound.frames in (0, UNKNOWN_FRAMES):
        sound.close()
        return None
    if sound.seekable():
        # libsndfile 1.2.2's Opus reader skips its pre-skip samples only once it has seeked: the first
        # read after opening an FFmpeg-written Opus file came out 312 samples late, up to 1.3 off
        try:
            sound.seek(0)
        except sf.SoundFileError:  # a FLAC cut within its first frames: its error was a traceback that ended
            sound.close()  # a whole `score` batch; FFmpeg reads what there is and says where it ends
            return None
    return sound


class SndfileDecoder(Decoder):
    """A file libsndfile has opened and found frames in. `head` is the file's start, where a header
    libsndfile does not check is read."""

    def __init__(self, sound: sf.SoundFile, what: str, head: bytes, damage: OggDamage | None = None,
                 past_damage: Callable[[], Decoder] | None = None, ogg_closed: bool = False) -> None:
        """`damage`: an Ogg file's first damaged page (engine.sources.ogg_pages), found before decoding.
        `past_damage`: a decoder of the same file that decodes on past damage where libsndfile stops.
        `ogg_closed`: the pages show the Ogg stream's end mark, whole: libsndfile's "lacks an end-of-stream
        bit" then comes from bytes after it (padding, a tag), which are not audio (1 kB of zeros after an
        intact Vorbis file had it called cut)."""
        self._ogg_closed = ogg_closed
        self._sound, self.what, self.rate = sound, what, sound.samplerate
        self._past_damage = past_damage
        self._stopped_by: str | None = None  # libsndfile's reason, where damage ended its decoding
        # 64-bit float files are read as such and narrowed by narrow_to_float32, where a value float32
        # cannot hold is still seen for what it is (libsndfile's own cast makes it Inf)
        self._dtype = "float64" if sound.subtype == "DOUBLE" else "float32"
        self._declared = _declared_frames(sound, head)
        self._damage = damage

    def blocks(self, frames_per_block: int) -> Iterator[np.ndarray]:
        decoded, intact = 0, self._intact_frames()
        while True:
            frames, failure = self._read(frames_per_block, decoded)
            if intact is not None and decoded + len(frames) >= intact:  # nothing after the damage is trusted
                frames, failure = frames[:intact - decoded], self._damage_error(intact)
            decoded += len(frames)
            if len(frames):
                yield frames
            if failure is not None and self._stopped_by is not None and self._past_damage is not None:
                yield from self._decode_past_damage(decoded, frames_per_block)
            if failure is not None:
                raise failure
            if len(frames) < frames_per_block:
                break
        if intact is not None:  # the audio ended before the damage: a page cut short, which it skipped
            raise self._damage_error(decoded)
        self._check_complete(decoded)

    def _intact_frames(self) -> int | None:
        """The frames before an Ogg file's damage (None: no damage found)."""
        if self._damage is None:
            return None
        scale = 1.0 if self._damage.rate is None else self.rate / self._damage.rate
        return round(self._damage.samples * scale)

    def _damage_error(self, intact: int) -> AudioSourceError:
        at = intact / self.rate
        if self._damage.cut:
            return _truncated(self.what, at, "where the file ends inside an Ogg page")
        return AudioSourceError(f"{self.what} is damaged: its audio cannot be decoded past {at:.2f} s (the Ogg page "
                                f"at byte {self._damage.offset} fails its checksum)")

    def _read(self, count: int, position: int) -> tuple[np.ndarray, AudioSourceError | None]:
        """Up to `count` float32 frames from frame `position`, and the error that ends the audio in them
        (damage, or a value beyond float32's range), after every frame before it."""
        decoded, reason = self._decode(count, position)
        frames, beyond = narrow_to_float32(decoded)
        if beyond is not None:
            return frames[:beyond], out_of_range(self.what, (position + beyond) / self.rate)
        if reason is not None:
            at = (position + len(frames)) / self.rate
            self._stopped_by = reason
            return frames, AudioSourceError(f"{self.what} is damaged: its audio cannot be decoded past {at:.2f} s "
                                            f"({reason})")
        return frames, None

    def _decode_past_damage(self, decoded: int, frames_per_block: int) -> Iterator[np.ndarray]:
        """The audio after the first `decoded` frames from the other decoder, which decodes on where libsndfile
        lost sync (a FLAC with 64 bytes zeroed a third in lost two thirds of its audio), then the damage,
        said once the audio has gone out: a cut where the audio still ends short of the header's length by
        more than a frame; frames FFmpeg's parser dropped, which its timestamps put silence in place of
        (the audio after them keeps its time: they had come early); a frame left out where the audio still
        ends short by less than a frame; else the other decoder's own account; else where libsndfile
        stopped (FFmpeg decoded a frame failing its checksum as it came: its samples may be wrong). Nothing
        more where the other decoder cannot open the file: libsndfile's error stands."""
        try:
            other = self._past_damage()
        except AudioSourceError:
            return
        skip, total, account = decoded, decoded, None
        with other:
            try:
                for block in other.blocks(frames_per_block):
                    block, skip = block[skip:], max(0, skip - len(block))
                    total += len(block)
                    if len(block):
                        yield block
            except AudioSourceError as exc:
                account = exc
        filled = getattr(other, "filled", [])
        if filled:  # the frames FFmpeg's parser dropped, heard as silence in their place by their timestamps
            raise AudioSourceError(f"{self.what} is damaged near {filled[0][0]:.2f} s: "
                                   f"{sum(length for _, length in filled):.3f} s of its audio there could not be "
                                   "decoded and is silence in its place; the audio after it keeps its time")
        if total + FLAC_MAX_BLOCK < self._declared:  # short by more than a frame FFmpeg could not decode
            raise _truncated(self.what, total / self.rate, f"of the {self._declared / self.rate:.2f} s its header "
                             "declares")
        if total < self._declared:  # FLAC's parser dropped the damaged frame: what follows it comes early
            lost = (self._declared - total) / self.rate
            raise AudioSourceError(f"{self.what} is damaged near {decoded / self.rate:.2f} s: {lost:.3f} s of its "
                                   f"audio there could not be decoded and is left out, so the audio after it comes "
                                   f"{lost:.3f} s early")
        raise account or AudioSourceError(
            f"{self.what} is damaged: libsndfile stopped decoding it at {decoded / self.rate:.2f} s "
            f"({self._stopped_by}); FFmpeg decoded on from there, and a damaged frame's samples may be wrong")

    def _decode(self, count: int, start: int) -> tuple[np.ndarray, str | None]:
        """Up to `count` frames from frame `start` (where the file is), and libsndfile's reason where a
        read failed, after every frame before the failure (`_salvage`)."""
        try:
            return self._sound.read(count, dtype=self._dtype, always_2d=True), None
        except sf.SoundFileError as exc:
            return self._salvage(count, start, _sndfile_reason(exc))

    def _salvage(self, count: int, start: int, reason: str) -> tuple[np.ndarray, str | None]:
        """The frames of a read of `count` from `start` that failed for `reason`, read again in ever
        smaller pieces down to one frame, up to the failure: a failed read returns no frame at all, and
        half of a 2.4 s FLAC gave 1.0 s in reads of 16,000 frames, 1.28 s this way."""
        pieces = [np.zeros((0, self._sound.channels), self._dtype)]
        if count == 1:
            return pieces[0], reason
        try:
            self._sound.seek(start)
        except sf.SoundFileError:  # no way back (GSM 6.10 cannot seek): the failed read's frames are lost with it
            return pieces[0], reason
        step = -(-count // SALVAGE_SPLIT)
        for offset in range(0, count, step):
            size = min(step, count - offset)
            got, failed = self._decode(size, start + offset)
            pieces.append(got)
            if failed is not None:  # the first failure's reason: a single frame's tends to be a bad seek
                return np.concatenate(pieces), reason
            if len(got) < size:
                break  # the end of the audio
        return np.concatenate(pieces), None

    def _check_complete(self, decoded: int) -> None:
        """Raise where the audio ended before the file says it does: libsndfile reads a cut file to
        its end without a word."""
        if OGG_END_MISSING.search(self._sound.extra_info) and not self._ogg_closed:
            raise _truncated(self.what, decoded / self.rate, "without the end-of-stream mark that closes an Ogg stream")
        _check_length(self.what, decoded / self.rate, self._declared / self.rate, slack_s=0.0)
        if SEEMS_TRUNCATED.search(self._sound.extra_info):  # a reader that saw the cut but declares no length to us
            raise _truncated(self.what, decoded / self.rate, "before the end its header declares")

    def close(self) -> None:
        self._sound.close()


def _declared_frames(sound: sf.SoundFile, head: bytes) -> int:
    """The frames the header declares. libsndfile counts only the frames a cut WAV, AIFF, W64… holds,
    and notes the chunk that declares more in its log: the missing share of its bytes is that of the
    frames (exact for a chunk that holds only audio; W64's outer one counts its ~100 header bytes in,
    a few ms on a cut file). It counts a MATLAB or NIST file's frames from the file's size too, so
    their own declarations are read: the audio matrix's size, the header's sample count. A FLAC's
    count is its header's own."""
    cut = SHORT_CHUNK.search(sound.extra_info)
    if cut is not None:
        declared, held = map(int, cut.groups())
        if SIZE_QUIRK_BYTES < declared - held and declared < UNKNOWN_SIZE:
            return round(sound.frames * declared / held)
    matrices = MATRIX.findall(sound.extra_info) if sound.format in ("MAT4", "MAT5") else []
    if matrices:
        rows, cols = map(int, matrices[-1])
        return max(sound.frames, rows * cols // sound.channels)
    counted = NIST_SAMPLES.search(head) if sound.format == "NIST" else None
    if counted is not None:
        return max(sound.frames, int(counted.group(1)))
    return sound.frames


class FFmpegDecoder(Decoder):
    """The first audio stream of any container FFmpeg opens, as float32 at its own rate and channels."""

    def __init__(self, file: AudioInput, what: str, damaged_page: int | None = None) -> None:
        """`damaged_page`: the first byte of an Ogg chain's page that is cut or fails its checksum
        (engine.sources.ogg_pages), which FFmpeg decodes around without a word: said after the audio."""
        import av  # the FFmpeg bindings load only for files libsndfile does not read

        self.what, self._av, self._damaged_page = what, av, damaged_page
        try:
            self._container, guessed = _open_noting_guesses(av, file)
        except (av.FFmpegError, UnicodeDecodeError) as exc:
            raise AudioSourceError(f"cannot read {what} as audio: {_ffmpeg_reason(exc)}") from None
        decodable = [stream for stream in self._container.streams.audio if stream.codec_context is not None]
        if not decodable:
            found = "an audio stream of an unknown codec" if self._container.streams.audio else "no audio stream"
            self._container.close()
            raise AudioSourceError(f"{what}: {found} in the file")
        self._stream = decodable[0]
        if len(self._container.streams.audio) > 1:  # a screen recorder's mic on track 2, a call's sides: not a word
            others = len(self._container.streams.audio) - 1
            log.warning("%s holds %d audio streams; only the first is read (%d other%s not): to score another, "
                        "extract it first, e.g. `ffmpeg -i FILE -map 0:a:1 track2.wav`", what, others + 1, others,
                        "s" if others > 1 else "")
        self.rate = float(self._stream.codec_context.sample_rate or 0)  # its bounds: ToMono16k's check
        if self.rate <= 0:
            self._container.close()
            raise AudioSourceError(f"{what}: the audio stream declares no sample rate")
        self._declared = _declared_length(self._container, self._stream, guessed)
        self.filled: list[tuple[float, float]] = []  # (at, seconds) of silence put where timestamps had no audio

    def blocks(self, frames_per_block: int) -> Iterator[np.ndarray]:
        """FFmpeg's frames as they come (frames_per_block is libsndfile's business: packets set the size)."""
        av = self._av
        # packed float32, keeping the channels and one rate throughout: PyAV 18's planar frames of 8 or more
        # channels list a plane too many and crash the interpreter when read (a 7.1 AAC file, a 16-channel WAV)
        packed = av.AudioResampler(format="flt", rate=int(self.rate))
        decoded, failed, first_failure, unreadable = 0, 0, None, None
        origin, silent, padding = _timeline_origin(self._container), self.filled, []
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
                frames = [(_frame_time(frame), packed.resample(frame)) for frame in packet.decode()]
            except av.FFmpegError as exc:  # one damaged packet: counted, and decoding goes on after it
                failure = (decoded / self.rate, _ffmpeg_reason(exc))
                if any(bytes(packet)):
                    failed += 1
                    first_failure = first_failure or failure
                else:  # zeros: padding a writer left after the last frame, damage only where audio follows
                    padding.append(failure)
                continue
            if padding and frames:
                failed += len(padding)
                first_failure = first_failure or padding[0]
                padding.clear()
            for at, outs in frames:
                gap = at - origin - decoded / self.rate if at is not None and origin is not None else 0.0
                if gap > GAP_FILL_S and outs:  # the container's timeline has no audio here: silence keeps it
                    silence = round(gap * self.rate)
                    silent.append((decoded / self.rate, silence / self.rate))
                    decoded += silence
                    yield np.zeros((silence, outs[0].layout.nb_channels), np.float32)
                for out in outs:
                    decoded += out.samples
                    yield as_frames(out)
        for frame in packed.resample(None):
            decoded += frame.samples
            yield as_frames(frame)
        if silent:
            log.info("%s: its timestamps leave %d stretch(es) without audio (%.2f s in all, the first %.2f s at "
                     "%.2f s): heard as silence, so every time stays the container's", self.what, len(silent),
                     sum(length for _, length in silent), silent[0][1], silent[0][0])
        if unreadable is not None:
            at, reason = unreadable
            raise AudioSourceError(f"{self.what} is damaged: the container cannot be read past {at:.2f} s ({reason})")
        if decoded == 0 and not failed:
            raise AudioSourceError(f"{self.what}: the audio contains no samples")
        if failed:
            at, reason = first_failure
            raise AudioSourceError(f"{self.what} is damaged: {failed} packet(s) could not be decoded, the first "
                                   f"at {at:.2f} s ({reason}); the audio around them was skipped")
        if self._damaged_page is not None:
            raise AudioSourceError(f"{self.what} is damaged: the Ogg page at byte {self._damaged_page} is cut short or "
                                   "fails its checksum; the audio around it was skipped")
        if self._declared is not None:
            _check_length(self.what, decoded / self.rate, *self._declared)

    def close(self) -> None:
        self._container.close()


def _timeline_origin(container: av.container.InputContainer) -> float | None:
    """The container's start, in seconds, against which an audio frame's timestamp says where it
    belongs; None where the container gives none."""
    start = container.start_time  # microseconds
    return start / 1e6 if start is not None else None


def _frame_time(frame: av.AudioFrame) -> float | None:
    """When a decoded frame starts on the container's timeline, in seconds; None without a timestamp."""
    return float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else None


def as_frames(frame: av.AudioFrame) -> np.ndarray:
    """A packed frame's samples shaped (frames, channels)."""
    return frame.to_ndarray().reshape(frame.samples, -1)


def _open_noting_guesses(av, file: AudioInput) -> tuple[av.container.InputContainer, bool]:
    """The container FFmpeg opens, and whether FFmpeg guessed its duration from a bit rate (its warning
    "Estimating duration from bitrate"): a raw AAC (ADTS) or AC-3 stream declares no length, and the
    guess was 7.50 s for 7.23 s of AAC, which the length check would call a cut file. FFmpeg's log is
    read at warning level in this thread while the file opens, repeats included (PyAV drops a message
    that repeats the last one: the second of two such files read alike was called cut), and PyAV's
    settings are put back after."""
    level, skip_repeated = av.logging.get_level(), av.logging.get_skip_repeated()
    av.logging.set_level(av.logging.WARNING)
    av.logging.set_skip_repeated(False)
    try:
        with av.logging.Capture() as logs:
            container = av.open(file, "r")
    finally:
        av.logging.set_level(level)
        av.logging.set_skip_repeated(skip_repeated)
    return container, any(BITRATE_GUESS in message for _, _, message in logs)


def _declared_length(container: av.container.InputContainer, stream: av.audio.stream.AudioStream,
                     guessed: bool) -> tuple[float, float] | None:
    """The length the file declares, in seconds, and how far short of it the audio may end; None where
    it declares none (a live recording never finalised, a duration FFmpeg `guessed`). CAF and AVI keep
    the frame count of the header itself (CAF's packet table, AVI's stream header, in the stream's time
    base), which is taken where present: FFmpeg takes those formats' duration from what is left of a
    cut file (a PCM file cut by 0.22 s in 2 s passed the duration's slack), or from a bit rate that is
    wrong for some codecs (7,468 s for 7 s of MS ADPCM in AVI). Elsewhere the container's duration is
    the declaration: the audio stream's own duration where the container records one, else the
    container's where the audio is its only stream. The container's is its longest stream's: a video
    running 0.5 s past the audio, a shorter first audio track or audio starting late under the video
    called intact files damaged."""
    if container.format.name in ("caf", "avi") and stream.frames > 0 and stream.time_base:
        packet_s = (stream.codec_context.frame_size or 0) / stream.codec_context.sample_rate
        return float(stream.frames * stream.time_base), HEADER_SLACK_PACKETS * packet_s
    if guessed:
        return None
    if stream.duration and stream.duration > 0 and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration and container.duration > 0 and len(container.streams) == 1:
        duration = container.duration / 1e6  # microseconds
    else:
        return None
    return duration, max(LENGTH_SLACK_S, LENGTH_SLACK_FRACTION * duration)


def _check_length(what: str, ends_s: float, declared_s: float, slack_s: float) -> None:
    """Raise if the audio ended more than `slack_s` before the `declared_s` seconds its header declares,
    to the millisecond where hundredths would read alike ("ends at 10.00 s of the 10.00 s")."""
    if ends_s < declared_s - slack_s:
        digits = 2 if f"{ends_s:.2f}" != f"{declared_s:.2f}" else 3
        raise _truncated(what, ends_s, f"of the {declared_s:.{digits}f} s its header declares", digits)


def _truncated(what: str, ends_s: float, short_of: str, digits: int = 2) -> AudioSourceError:
    """The one message for audio that ends before its file says it does."""
    return AudioSourceError(f"{what} is damaged or truncated: its audio ends at {ends_s:.{digits}f} s {short_of}")


def _sndfile_reason(exc: Exception) -> str:
    """libsndfile's own explanation without the repeated file name."""
    return getattr(exc, "error_string", None) or str(exc)


def _ffmpeg_reason(exc: Exception) -> str:
    """FFmpeg's explanation without the file name and call PyAV append."""
    return getattr(exc, "strerror", None) or str(exc)
