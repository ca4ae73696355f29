"""Phone, browser and video-call recordings (.webm, .m4a, .mp4, .mp3) are read in every entry point,
and a damaged or truncated file of any format is reported after every sample it holds, never
silently cut; an intact file never is.

The files are encoded here from real speech (containers with PyAV's own FFmpeg, libsndfile's
formats with soundfile), so the test knows what each must decode to.
"""
from __future__ import annotations

import copy
import csv
import io
import json
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import emolive
from tests.conftest import corpus_files, read_audio
from emolive.engine.sources import AudioSourceError, FileSource
from emolive.trainer.data import FeatureCache
from emolive.trainer.data.cache import load_audio

EMOLIVE = str(Path(sys.executable).parent / "emolive")
# (file name, container, codec, rate, channels): what a browser (Opus in WebM), a phone (AAC in
# M4A, stereo 44.1 kHz), a video call (AAC in MP4) and a podcast (MP3, stereo 22.05 kHz) write
CONTAINERS = [("call.webm", "webm", "libopus", 48000, 1), ("phone.m4a", "ipod", "aac", 44100, 2),
              ("video.mp4", "mp4", "aac", 16000, 1), ("podcast.mp3", "mp3", "libmp3lame", 22050, 2)]
# A lossy codec at its default bit rate keeps speech's waveform: measured .977 (AAC, 44.1 kHz
# stereo) to .9999; PyAV's wheel carries its own FFmpeg, so the decoders are the same on any CPU.
MIN_CORRELATION = 0.95
MAX_DELAY = 2048  # encoder priming FFmpeg keeps at the start (AAC: 1024 samples at the codec's rate)
# the video containers a folder search takes too, with the audio such files carry: (file name, container, codec, rate)
VIDEOS = [("lecture.avi", "avi", "pcm_s16le", 16000), ("broadcast.ts", "mpegts", "aac", 48000),
          ("dvd.mpg", "mpeg", "mp2", 48000), ("clip.m4v", "ipod", "aac", 44100)]
# (file name, format, subtype) of the files libsndfile reads: the lossless ones, Ogg, and the rarer ones
# that declare their length in a way libsndfile does not check itself (MATLAB's, NIST SPHERE, Creative's VOC)
SNDFILE_FORMATS = [("speech.wav", "WAV", "PCM_16"), ("float.wav", "WAV", "FLOAT"), ("speech.aiff", "AIFF", "PCM_16"),
                   ("speech.w64", "W64", "PCM_16"), ("speech.rf64", "RF64", "PCM_16"), ("speech.caf", "CAF", "PCM_16"),
                   ("speech.ogg", "OGG", "VORBIS"), ("speech.opus", "OGG", "OPUS"), ("speech.flac", "FLAC", "PCM_16"),
                   ("speech.mat", "MAT5", "PCM_16"), ("speech4.mat", "MAT4", "DOUBLE"), ("speech.nist", "NIST", "PCM_16"),
                   ("speech.voc", "VOC", "PCM_16")]
# intact WAV headers as writers leave them, (RIFF size, data size) -> what they write: the "unknown"
# sizes of writers that cannot seek back (ffmpeg, sox and GStreamer writing to a pipe, or sizes left
# 0), and sizes that count a chunk's own header or a pad byte the file lacks
WAV_HEADER_QUIRKS = {"ffmpeg to a pipe": lambda riff, data: (0xFFFFFFFF, 0xFFFFFFFF),
                     "sox to a pipe": lambda riff, data: (0x7FFFF024, 0x7FFFF000),
                     "GStreamer to a pipe": lambda riff, data: (0x7FFF0024, 0x7FFF0000),
                     "sizes left 0": lambda riff, data: (0, 0),
                     "RIFF counting its own header": lambda riff, data: (riff + 8, data),
                     "data counting a pad byte": lambda riff, data: (riff + 1, data + 1)}


def encode(path: Path, samples: np.ndarray, container: str, codec: str, rate: int, channels: int) -> Path:
    """16 kHz mono `samples` written as `codec` in `container` at `rate` with `channels` channels."""
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono" if channels == 1 else "stereo")
        frame = av.AudioFrame.from_ndarray(np.tile(samples[None, :], (channels, 1)).astype(np.float32),
                                           format="fltp", layout=stream.layout.name)
        frame.sample_rate = 16000
        to_codec = av.AudioResampler(format=stream.format.name, layout=stream.layout.name, rate=rate)
        for piece in [*to_codec.resample(frame), *to_codec.resample(None), None]:
            for packet in stream.encode(piece):
                out.mux(packet)
    return path


@pytest.fixture(scope="module")
def original() -> np.ndarray:
    return np.concatenate([read_audio(p) for p in corpus_files("ravdess", every=500, limit=3)])


@pytest.fixture(scope="module")
def recordings(tmp_path_factory, original) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("containers")
    return {name: encode(folder / name, original, *spec) for name, *spec in CONTAINERS}


def alignment(decoded: np.ndarray, original: np.ndarray) -> tuple[int, float]:
    """(delay in samples, waveform correlation at that delay) of the decoded audio against the original."""
    scores = np.correlate(decoded[:len(original) + MAX_DELAY], original, "valid")
    delay = int(np.argmax(scores))
    return delay, float(np.corrcoef(decoded[delay:delay + len(original)], original)[0, 1])


@pytest.mark.parametrize("name", [c[0] for c in CONTAINERS])
def test_each_container_streams_as_the_speech_it_holds(recordings, original, name):
    with FileSource(recordings[name]) as source:
        decoded = np.concatenate(list(source.blocks()))
    delay, correlation = alignment(decoded, original)
    assert correlation > MIN_CORRELATION
    assert len(original) <= len(decoded) - delay <= len(original) + MAX_DELAY  # nothing cut at the end


@pytest.mark.parametrize("name", [c[0] for c in CONTAINERS])
def test_analyze_and_the_trainer_read_each_container(recordings, original, tmp_path, name):
    result = emolive.analyze(recordings[name])
    reference = emolive.analyze(original, sample_rate=16000)
    assert result.whole is not None and len(result.windows) == len(reference.windows)
    # the trainer's reader is the engine's: the same samples, so the same features
    trainer_audio = load_audio(recordings[name].read_bytes(), name)
    with FileSource(recordings[name], block_size=4096) as source:
        np.testing.assert_array_equal(trainer_audio, np.concatenate(list(source.blocks())))
    assert FeatureCache(tmp_path / "cache").features(recordings[name]).shape[0] == pytest.approx(
        len(trainer_audio) / 320, abs=2)


def test_score_finds_and_scores_every_container_in_a_folder(recordings, original):
    folder = recordings["call.webm"].parent
    result = subprocess.run([EMOLIVE, "score", str(folder)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert sorted(Path(r["path"]).name for r in rows) == sorted(c[0] for c in CONTAINERS)
    assert all(r["error"] == "" and float(r["end"]) >= len(original) / 16000 - 0.05 for r in rows)


def test_stream_takes_a_webm(recordings):
    result = subprocess.run([EMOLIVE, "stream", "--no-publish", "--json", "--source", str(recordings["call.webm"])],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    estimates = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(estimates) >= 5 and all(e["speech"] is not None for e in estimates)


@pytest.mark.parametrize("name", ["podcast.mp3", "call.webm"])
def test_a_truncated_file_is_reported_with_everything_before_the_cut(recordings, tmp_path, name):
    data = recordings[name].read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[:len(data) * 6 // 10])
    with pytest.raises(emolive.PartialAnalysis, match="truncated: its audio ends at") as caught:
        emolive.analyze(cut)
    whole = emolive.analyze(recordings[name])
    kept = caught.value.analysis.windows
    assert 0 < len(kept) < len(whole.windows)
    assert [w["activation"] for w in kept[:3]] == pytest.approx([w["activation"] for w in whole.windows[:3]], abs=1e-4)
    for copied in (pickle.loads(pickle.dumps(caught.value)), copy.deepcopy(caught.value)):  # a process pool's result
        assert type(copied) is emolive.PartialAnalysis and str(copied) == str(caught.value)
        assert copied.analysis.windows == kept


def test_a_damaged_mp3_frame_is_reported_and_the_rest_is_still_read(recordings, tmp_path):
    data = bytearray(recordings["podcast.mp3"].read_bytes())
    middle = len(data) // 3
    data[middle:middle + 400] = bytes((b * 7 + 3) % 256 for b in data[middle:middle + 400])
    damaged = tmp_path / "damaged.mp3"
    damaged.write_bytes(bytes(data))
    with pytest.raises(emolive.PartialAnalysis, match="could not be decoded") as caught:
        emolive.analyze(damaged)
    whole = emolive.analyze(recordings["podcast.mp3"])
    assert caught.value.analysis.whole["end"] == pytest.approx(whole.whole["end"], abs=0.2)  # not cut


def test_zeros_after_an_mp3_s_last_frame_are_padding_and_zeros_inside_it_damage(recordings, tmp_path):
    """512 zero bytes after a whole MP3 (a writer's padding) had it called damaged, "1 packet could not be
    decoded at its end", though every sample decoded; zeros inside it are still damage (the control)."""
    data = recordings["podcast.mp3"].read_bytes()
    (padded := tmp_path / "padded.mp3").write_bytes(data + bytes(512))
    whole = emolive.analyze(recordings["podcast.mp3"])

    def estimates(analysis: emolive.Analysis) -> list[tuple]:
        return [(w["start"], w["activation"], w["valence"], w["dominance"]) for w in analysis.windows]

    assert estimates(emolive.analyze(padded)) == estimates(whole)
    middle = len(data) // 2
    (zeroed := tmp_path / "zeroed.mp3").write_bytes(data[:middle] + bytes(400) + data[middle + 400:])
    with pytest.raises(emolive.PartialAnalysis, match="could not be decoded"):
        emolive.analyze(zeroed)


@pytest.mark.parametrize("content", [b"", b"\x00\x01 not audio" * 100])
def test_an_unreadable_file_is_one_error_naming_it(tmp_path, content):
    bad = tmp_path / "bad.m4a"
    bad.write_bytes(content)
    with pytest.raises(emolive.EmoliveError, match="bad.m4a"):
        emolive.analyze(bad)


@pytest.mark.parametrize("name", ["empty.flac", "empty.wav", "empty.ogg"])
def test_an_empty_file_is_said_to_be_empty(tmp_path, name):
    """An empty .flac said "the audio stream declares no sample rate", a .wav "Invalid data found", an .ogg
    "End of file": three reasons for one."""
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(emolive.EmoliveError, match=rf"{name} is empty \(0 bytes\)$"):
        emolive.analyze(tmp_path / name)


def test_a_header_declaring_3_ms_more_than_it_holds_says_both_to_the_millisecond(sndfile_recordings, tmp_path):
    """It said "its audio ends at 10.00 s of the 10.00 s its header declares", which contradicts itself."""
    data = bytearray(sndfile_recordings["speech.wav"].read_bytes())
    at = data.find(b"data")
    struct.pack_into("<I", data, at + 4, len(data) - at - 8 + 100)  # 50 frames (3 ms) more than follow
    (claims := tmp_path / "claims.wav").write_bytes(bytes(data))
    with pytest.raises(emolive.PartialAnalysis) as caught:
        emolive.analyze(claims)
    ends, declared = re.search(r"ends at ([0-9.]+) s of the ([0-9.]+) s its header declares", str(caught.value)).groups()
    assert len(ends.split(".")[1]) == 3 and float(declared) - float(ends) == pytest.approx(0.003, abs=0.0011)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mangled_container_gives_estimates_or_one_error_never_a_crash(recordings, tmp_path, data):
    """Hostile files through FFmpeg: each container with bytes overwritten or cut anywhere. The
    result is an analysis (possibly partial, saying why) or one EmoliveError line; nothing else."""
    name = data.draw(st.sampled_from(sorted(recordings)))
    content = bytearray(recordings[name].read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(content) - 1))
        content[at:at + 16] = data.draw(st.binary(min_size=1, max_size=16))
    if data.draw(st.booleans()):
        del content[data.draw(st.integers(0, len(content))):]
    mangled = tmp_path / f"mangled{Path(name).suffix}"
    mangled.write_bytes(bytes(content))
    try:
        result = emolive.analyze(mangled)
    except emolive.PartialAnalysis as exc:
        result = exc.analysis
        assert "\n" not in str(exc) and str(mangled) in str(exc)
    except emolive.EmoliveError as exc:
        assert "\n" not in str(exc).strip()
        return
    assert all(1 <= w["activation"] <= 7 for w in result.windows)


@pytest.fixture(scope="module")
def sndfile_recordings(tmp_path_factory, original) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sndfile")
    for name, container, subtype in SNDFILE_FORMATS:
        sf.write(folder / name, original, 16000, format=container, subtype=subtype)
    return {name: folder / name for name, *_ in SNDFILE_FORMATS}


def streamed(path: Path) -> tuple[np.ndarray, AudioSourceError | None]:
    """Every sample a FileSource delivers from `path` in analyze's 1 s reads, and the error it ends with."""
    blocks, error = [], None
    with FileSource(path, block_size=16000) as source:
        try:
            blocks.extend(source.blocks())
        except AudioSourceError as exc:
            error = exc
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32), error


def cut(path: Path, folder: Path, fraction: float) -> Path:
    """The first `fraction` of `path`'s bytes, as a download or copy that stopped part way leaves it."""
    data = path.read_bytes()
    (folder / path.name).write_bytes(data[:int(len(data) * fraction)])
    return folder / path.name


@pytest.mark.parametrize("name", [f[0] for f in SNDFILE_FORMATS])
def test_each_intact_sndfile_format_streams_whole_without_error(sndfile_recordings, name):
    decoded, error = streamed(sndfile_recordings[name])
    assert error is None
    np.testing.assert_array_equal(decoded, sf.read(sndfile_recordings[name], dtype="float32")[0])


@pytest.mark.parametrize("name", [f[0] for f in SNDFILE_FORMATS])
def test_a_cut_file_of_each_sndfile_format_is_reported_after_the_audio_it_holds(sndfile_recordings, tmp_path, name):
    """libsndfile reads a cut WAV, AIFF, W64, RF64, Ogg, MATLAB, NIST or VOC file to its end without an
    error (a cut CAF it cannot open: FFmpeg reads it); the decoder must say so once the audio it holds is out."""
    damaged = cut(sndfile_recordings[name], tmp_path, 0.55)
    decoded, error = streamed(damaged)
    assert error is not None and "\n" not in str(error) and f"{damaged} is damaged" in str(error)
    intact = sf.read(sndfile_recordings[name], dtype="float32")[0]
    # each codec decodes a stream's start alike whatever follows it: the intact file's first samples;
    # 55 % of the bytes held 49 % (Vorbis) to 57 % (FLAC) of this speech's samples
    assert 0.4 < len(decoded) / len(intact) < 0.6
    np.testing.assert_array_equal(decoded, intact[:len(decoded)])


def test_a_raw_aac_stream_whose_length_ffmpeg_guesses_is_read_whole(original, tmp_path):
    """A raw AAC stream (.aac, ADTS) declares no length: FFmpeg guesses one from the bit rate, 3 % over
    for this speech (7.47 s for 7.23 s once), and the length check had called the intact file truncated."""
    speech = np.tile(original, 3)
    raw = encode(tmp_path / "speech.aac", speech, "adts", "aac", 16000, 1)
    for _ in range(2):  # FFmpeg's second warning is the same message: the second file is read alike
        decoded, error = streamed(raw)
        assert error is None
        assert len(speech) <= len(decoded) <= len(speech) + MAX_DELAY  # nothing cut at the end


@pytest.mark.parametrize("name", ["speech.opus", "speech.ogg"])
def test_an_ogg_file_cut_anywhere_in_its_second_half_is_reported(sndfile_recordings, tmp_path, name):
    """libsndfile notes a cut Ogg stream three ways: its last page "lacks" the end mark, the stream
    "ended unexpectedly" without it (its Opus reader), or bytes after the last whole page are "junk"
    (a page cut part way; it stops at the page before, which lost the last ~0.5 s of a Vorbis file in
    silence). Every cut at 1 % steps is reported."""
    intact = sf.read(sndfile_recordings[name], dtype="float32")[0]
    for percent in range(50, 100):
        damaged = cut(sndfile_recordings[name], tmp_path, percent / 100)
        decoded, error = streamed(damaged)
        assert error is not None and "truncated" in str(error) and len(decoded) < len(intact), percent


def test_an_opus_file_ffmpeg_wrote_streams_as_it_decodes_whole(original, tmp_path):
    """libsndfile 1.2.2 skips an Opus stream's pre-skip only after a seek: the first 1 s read of an Opus
    file FFmpeg wrote (a browser's, a phone's) came out 312 samples late, off by up to 1.3."""
    opus = encode(tmp_path / "call.opus", original, "ogg", "libopus", 16000, 1)
    decoded, error = streamed(opus)
    assert error is None
    np.testing.assert_array_equal(decoded, sf.read(opus, dtype="float32")[0])


def flip_in_middle_page(path: Path, folder: Path) -> tuple[Path, int]:
    """`path` with one byte of the page that spans its middle byte flipped (the page's last byte, audio
    data), as a bad sector or a bit error in transfer leaves it; and the byte offset of that page."""
    data = bytearray(path.read_bytes())
    page = data.rfind(b"OggS", 0, len(data) // 2)
    data[data.find(b"OggS", len(data) // 2) - 1] ^= 0xFF
    (folder / path.name).write_bytes(bytes(data))
    return folder / path.name, page


@pytest.mark.parametrize("name", ["speech.opus", "speech.ogg", "ffmpeg.opus"])
def test_an_ogg_page_failing_its_checksum_is_reported_after_the_audio_before_it(sndfile_recordings, original,
                                                                               tmp_path, name):
    """libsndfile drops an Ogg page whose checksum fails and goes on without a word: a flipped byte
    lost a 1 s page of an Opus file, and in 1 s reads the 2.7 s after it came out as other audio. The
    audio before the page is delivered as the intact file's, then the damage is named."""
    intact_file = sndfile_recordings.get(name) or encode(tmp_path / name, original, "ogg", "libopus", 16000, 1)
    (tmp_path / "damaged").mkdir()
    damaged, page = flip_in_middle_page(intact_file, tmp_path / "damaged")
    decoded, error = streamed(damaged)
    assert error is not None and f"at byte {page} fails its checksum" in str(error), error
    intact = streamed(intact_file)[0]
    assert 0.2 < len(decoded) / len(intact) < 0.8
    # the intact file's samples, bit for bit, except Opus's last 10 ms: its decoder blends the end of the
    # last good packet into the lost one's concealment (6.5 ms of FFmpeg's Opus moved by at most 1e-5)
    np.testing.assert_array_equal(decoded[:-160], intact[:len(decoded) - 160])
    np.testing.assert_allclose(decoded[-160:], intact[len(decoded) - 160:len(decoded)], atol=1e-3)
    # the message gives the time in 10 ms; the 16 kHz samples delivered end within a sample of it
    assert abs(float(re.search(r"past ([\d.]+) s", str(error)).group(1)) - len(decoded) / 16000) <= 0.005 + 1 / 16000


def test_eight_or_more_channels_through_ffmpeg_are_read_not_a_crash(original, tmp_path):
    """PyAV 18's planar frames of 8 or more channels list a plane too many: reading one killed the
    process (SIGSEGV), a whole `emolive score` batch with it (a 7.1 AAC file, a 16-channel WAV written to
    a pipe). Each file here holds the same speech on every channel, so each reads as the mono file does
    (the mean of equal 16-bit samples is exact). Run in a child process: a crash must fail the test,
    not end the test run."""
    pcm = np.round(original * 32767).astype("<i2")
    names = []
    for channels in (1, 8, 16):
        header = struct.pack("<HHIIHH", 1, channels, 16000, 16000 * 2 * channels, 2 * channels, 16)
        data = np.repeat(pcm[:, None], channels, axis=1).tobytes()
        path = tmp_path / f"{channels}ch.wav"  # sizes 0, as a writer to a pipe leaves them: FFmpeg reads it
        path.write_bytes(b"RIFF\0\0\0\0WAVEfmt " + struct.pack("<I", 16) + header + b"data\0\0\0\0" + data)
        names.append(str(path))
    run = subprocess.run([EMOLIVE, "score", *names, "--out", str(tmp_path / "rows.csv")], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    with open(tmp_path / "rows.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["error"] for r in rows] == ["", "", ""]
    assert rows[1]["activation"] == rows[2]["activation"] == rows[0]["activation"]


@pytest.mark.parametrize("after", [b"TAG" + bytes(125), bytes(1000), bytes(30000)], ids=["ID3v1 tag", "1 kB", "30 kB"])
def test_an_ogg_file_with_bytes_after_its_last_page_is_read_whole(sndfile_recordings, tmp_path, after):
    """A tag or padding after the last whole page is junk to libsndfile too, but no audio is missing;
    from 1 kB on libsndfile said the last page "lacks an end-of-stream bit", and the file was called
    cut though the pages showed the mark."""
    tagged = tmp_path / "tagged.ogg"
    tagged.write_bytes(sndfile_recordings["speech.ogg"].read_bytes() + after)
    decoded, error = streamed(tagged)
    assert error is None
    np.testing.assert_array_equal(decoded, sf.read(sndfile_recordings["speech.ogg"], dtype="float32")[0])


def test_a_whole_gsm_wav_is_read_without_error(original, tmp_path):
    """libsndfile writes GSM 6.10's odd-sized data chunk without a pad byte and then says of it that it
    "seems to be truncated": the log line of a WAV chunk is not a cut (its declared size is checked)."""
    sf.write(tmp_path / "gsm.wav", original, 16000, subtype="GSM610")
    decoded, error = streamed(tmp_path / "gsm.wav")
    with sf.SoundFile(tmp_path / "gsm.wav") as gsm:
        frames = gsm.frames
    assert error is None and len(decoded) == frames >= len(original)


def test_a_caf_cut_near_its_end_is_reported(sndfile_recordings, tmp_path):
    """A cut CAF goes to FFmpeg (libsndfile cannot open it), whose duration is what is left of the
    file: 3 % of this one is 0.2 s of audio, which a container's 0.25 s of slack let pass. The packet
    table's count is exact for PCM."""
    damaged = cut(sndfile_recordings["speech.caf"], tmp_path, 0.97)
    decoded, error = streamed(damaged)
    intact = sf.read(sndfile_recordings["speech.caf"], dtype="float32")[0]
    assert error is not None and f"of the {len(intact) / 16000:.2f} s its header declares" in str(error)
    assert 0.1 < (len(intact) - len(decoded)) / 16000 < 0.25
    np.testing.assert_array_equal(decoded, intact[:len(decoded)])


def test_a_cut_wav_is_an_error_in_every_entry_point_after_its_estimates(sndfile_recordings, original, tmp_path):
    damaged = cut(sndfile_recordings["speech.wav"], tmp_path, 0.5)
    declared = f"of the {len(original) / 16000:.2f} s its header declares"
    with pytest.raises(emolive.PartialAnalysis, match=f"truncated: its audio ends at .* {declared}") as caught:
        emolive.analyze(damaged)
    assert caught.value.analysis.windows and declared in caught.value.analysis.error
    score = subprocess.run([EMOLIVE, "score", str(damaged)], capture_output=True, text=True, timeout=300)
    [row] = csv.DictReader(io.StringIO(score.stdout))
    assert declared in row["error"] and float(row["end"]) > len(original) / 16000 * 0.4
    stream = subprocess.run([EMOLIVE, "stream", "--no-publish", "--json", "--source", str(damaged)],
                            capture_output=True, text=True, timeout=300)
    assert stream.returncode == 1 and [json.loads(line) for line in stream.stdout.splitlines()]
    assert declared in stream.stderr.splitlines()[-1] and "Traceback" not in stream.stderr


def test_a_cut_flac_keeps_every_frame_that_decodes(tmp_path):
    """libsndfile fails a whole read that meets the damage: in 1 s reads, half of this 2.39 s clip
    gave 1.0 s, though reading it a frame at a time decodes 1.28 s."""
    damaged = cut(corpus_files("ravdess", limit=1)[0], tmp_path, 0.5)
    frames = []
    with sf.SoundFile(damaged) as flac, pytest.raises(sf.SoundFileError):
        while True:
            frames.append(flac.read(1, dtype="float32"))
    decodable = np.concatenate(frames)
    decoded, error = streamed(damaged)
    assert len(decodable) > 16000
    # FFmpeg, which reads on where libsndfile stops, decodes the last whole FLAC frame to its end (4096 frames
    # each here): libsndfile's frame-by-frame salvage stops one sample short of it
    assert len(decoded) == -(-len(decodable) // 4096) * 4096
    np.testing.assert_array_equal(decoded[:len(decodable)], decodable)
    assert (f"is damaged or truncated: its audio ends at {len(decoded) / 16000:.2f} s of the "
            f"{sf.info(damaged).frames / 16000:.2f} s its header declares") in str(error)


def test_a_flac_cut_within_its_first_frames_is_one_error_and_the_batch_goes_on(tmp_path):
    """libsndfile opens such a file but cannot seek to its start: its LibsndfileError was a traceback in
    analyze, the trainer and `emolive score`, whose batch ended there without a row for the next file."""
    original = corpus_files("emodb", limit=1)[0]
    for size in (42, 500, 3000):
        cut_file = tmp_path / f"cut{size}.flac"
        cut_file.write_bytes(original.read_bytes()[:size])
        try:  # at the open (42 bytes: no frame) or after the audio, one line either way
            error = streamed(cut_file)[1]
        except AudioSourceError as exc:
            error = exc
        assert isinstance(error, AudioSourceError) and "\n" not in str(error) and str(cut_file) in str(error)
    table = subprocess.run([EMOLIVE, "score", str(tmp_path / "cut3000.flac"), str(original)], capture_output=True,
                           text=True, timeout=120)
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    assert table.returncode == 1 and "Traceback" not in table.stderr, table.stderr
    assert [bool(row["error"]) for row in rows] == [True, False] and rows[1]["activation"]


def test_a_flac_damaged_part_way_is_decoded_past_the_damage_and_reported(tmp_path):
    """64 zeroed bytes a third into a FLAC: libsndfile loses sync for good there, and two thirds of the
    recording went unscored though FFmpeg decodes past the damage. FFmpeg decodes the damaged frame as
    it comes (the demo clip's, 271 wrong samples) or drops it; where its timestamps place the dropped
    frame, silence takes its place (tests/test_score.py's damaged file), else (the EmoDB clip's) the
    frames after it come 4096 samples early, and the error says so; every other frame comes out as the
    intact file's, and the damage is said after the audio."""
    from emolive.engine.session import DEMO_CLIP

    for original, zeroed_at in ((DEMO_CLIP, 40000), (corpus_files("emodb", limit=1)[0], None)):
        intact = sf.read(original, dtype="float32")[0]
        data = bytearray(original.read_bytes())
        at = zeroed_at or len(data) // 3
        data[at:at + 64] = bytes(64)
        damaged = tmp_path / f"damaged-{original.name}"
        damaged.write_bytes(bytes(data))
        decoded, error = streamed(damaged)
        if len(decoded) == len(intact):  # decoded as it came, or dropped with silence in its place
            wrong = np.flatnonzero(decoded != intact)
            assert 0 < len(wrong) and wrong[-1] - wrong[0] < 4608, wrong  # within one FLAC frame (4608 at most)
            assert ("is damaged: libsndfile stopped decoding it at" in str(error) and "FFmpeg decoded on" in str(error)) \
                or "could not be decoded and is silence in its place" in str(error), error
        else:  # dropped where its timestamps could not place it: the frames after it whole, early by it, as said
            assert len(intact) - 4608 <= len(decoded) < len(intact)
            tail = decoded[::-1] != intact[::-1][:len(decoded)]
            assert np.argmax(tail) > 0.4 * len(intact)  # the frames after the damaged ones (the last 0.98 s of 2 s)
            lost = (len(intact) - len(decoded)) / 16000
            assert f"of its audio there could not be decoded and is left out, so the audio after it comes {lost:.3f} " \
                   "s early" in str(error), error
        assert zeroed_at is None or len(decoded) == len(intact)  # the demo clip: decoded as it came
        with pytest.raises(emolive.PartialAnalysis) as partial:
            emolive.analyze(damaged)
        assert partial.value.analysis.whole["end"] > 0.7 * len(intact) / 16000  # it stopped at 0.26 before


@pytest.mark.parametrize("quirk", sorted(WAV_HEADER_QUIRKS))
def test_an_intact_wav_whatever_its_writer_put_in_the_sizes_is_read_whole(sndfile_recordings, tmp_path, quirk):
    data = bytearray(sndfile_recordings["speech.wav"].read_bytes())
    at = data.index(b"data") + 4
    (riff,), (size,) = struct.unpack("<I", data[4:8]), struct.unpack("<I", data[at:at + 4])
    riff, size = WAV_HEADER_QUIRKS[quirk](riff, size)
    data[4:8], data[at:at + 4] = struct.pack("<I", riff), struct.pack("<I", size)
    (tmp_path / "quirk.wav").write_bytes(bytes(data))
    decoded, error = streamed(tmp_path / "quirk.wav")
    assert error is None
    np.testing.assert_array_equal(decoded, sf.read(sndfile_recordings["speech.wav"], dtype="float32")[0])


def test_a_flac_that_does_not_declare_its_length_is_read_whole(sndfile_recordings, tmp_path):
    """A FLAC written to a pipe leaves STREAMINFO's sample count 0, 'unknown' (its 36 bits end the
    header's bytes 13-17, after 'fLaC' and the 4-byte block header); libsndfile then fails at its end."""
    data = bytearray(sndfile_recordings["speech.flac"].read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO first, as the format requires
    data[21] &= 0xF0
    data[22:26] = bytes(4)
    (tmp_path / "piped.flac").write_bytes(bytes(data))
    decoded, error = streamed(tmp_path / "piped.flac")
    assert error is None
    np.testing.assert_array_equal(decoded, sf.read(sndfile_recordings["speech.flac"], dtype="float32")[0])


@pytest.fixture
def open_folder():
    """A folder every user may enter (pytest's tmp_path is its owner's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="emolive-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def as_a_user_bound_by_modes() -> list[str]:
    """The command prefix under which a mode-000 file cannot be opened: none for a user; root reads
    anything, so it runs the command as nobody."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root without setpriv: no user here whom a file's mode stops")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_a_file_without_read_permission_is_one_error_line(sndfile_recordings, open_folder):
    locked = open_folder / "locked.wav"
    shutil.copyfile(sndfile_recordings["speech.wav"], locked)
    locked.chmod(0)
    result = subprocess.run([*as_a_user_bound_by_modes(), EMOLIVE, "stream", "--no-publish", "--source", str(locked)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == f"emolive: error: cannot read {locked}: Permission denied"


@pytest.mark.parametrize("codec", ["pcm_s16le", "libmp3lame", "adpcm_ms"])
def test_a_cut_avi_is_reported_after_the_audio_it_holds(original, tmp_path, codec):
    """FFmpeg takes a cut AVI's duration from what is left of the file (and an MS ADPCM one's from a
    wrong bit rate: 7,468 s for 7 s); the stream header's own length is what the file was."""
    lecture = encode(tmp_path / "lecture.avi", original, "avi", codec, 16000, 1)
    (tmp_path / "cut").mkdir()
    damaged = cut(lecture, tmp_path / "cut", 0.5)
    decoded, error = streamed(damaged)
    intact, intact_error = streamed(lecture)
    assert intact_error is None and error is not None and f"{damaged} is damaged or truncated" in str(error)
    assert 0.4 < len(decoded) / len(intact) < 0.6
    np.testing.assert_array_equal(decoded, intact[:len(decoded)])


def test_a_folder_search_reads_the_audio_of_video_files(original, tmp_path):
    for name, container, codec, rate in VIDEOS:
        encode(tmp_path / name, original, container, codec, rate, 1)
    batch = emolive.analyze(tmp_path)
    assert sorted(Path(analysis.file).name for analysis in batch) == sorted(video[0] for video in VIDEOS)
    assert all(analysis.error == "" and analysis.whole["end"] >= len(original) / 16000 - 0.05 for analysis in batch)


def test_a_file_of_several_audio_streams_is_read_from_the_first_and_says_so(original, tmp_path, caplog):
    """A screen recorder's microphone on track 2 was scored as track 1's silence ("no speech") without a word."""
    path = tmp_path / "two_tracks.mkv"
    with av.open(str(path), "w", format="matroska") as out:
        streams = [out.add_stream("pcm_s16le", rate=16000, layout="mono") for _ in range(2)]
        for stream, signal in zip(streams, (original, np.zeros_like(original))):
            frame = av.AudioFrame.from_ndarray((signal * 32767).astype("<i2")[None], format="s16", layout="mono")
            frame.sample_rate = 16000
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                out.mux(packet)
    with caplog.at_level("WARNING"):
        decoded, error = streamed(path)
    assert error is None and np.abs(decoded[:len(original)] - original).max() < 1e-4  # the first: the speech
    assert [r.getMessage() for r in caplog.records] == [
        f"{path} holds 2 audio streams; only the first is read (1 other not): to score another, extract it first, "
        "e.g. `ffmpeg -i FILE -map 0:a:1 track2.wav`"]


@pytest.mark.parametrize("subtype", ["VORBIS", "OPUS"])
def test_a_chain_of_ogg_streams_is_read_whole(tmp_path, original, subtype):
    """Ogg files joined end to end (a chain, as a radio recording is) are one valid file; libsndfile read
    the first stream and stopped without a word, so half of two joined files was lost."""
    first, second = original[:16000 * 4], original[16000 * 4:]
    parts = []
    for i, samples in enumerate((first, second)):
        sf.write(part := tmp_path / f"part{i}.ogg", samples, 16000, format="OGG", subtype=subtype)
        parts.append(part.read_bytes())
    chain = tmp_path / "chain.ogg"
    chain.write_bytes(b"".join(parts))
    result = emolive.analyze(chain)
    # each stream decodes to its own length within a codec's priming (Opus: 312 samples at 48 kHz)
    assert result.error == "" and result.whole["end"] == pytest.approx(len(original) / 16000, abs=0.05)
    assert emolive.analyze(tmp_path / "part1.ogg").whole["end"] == pytest.approx(len(second) / 16000, abs=0.05)
    # a byte flipped in the second stream: FFmpeg decoded around it without a word
    damaged = bytearray(chain.read_bytes())
    damaged[len(parts[0]) + len(parts[1]) // 2] ^= 0xFF
    chain.write_bytes(bytes(damaged))
    with pytest.raises(emolive.PartialAnalysis, match="is damaged: the Ogg page at byte .* is cut short or fails its "
                                                      "checksum") as caught:
        emolive.analyze(chain)
    assert caught.value.analysis.whole["end"] > len(first) / 16000  # the first stream's audio and more were read


def mux_on_a_timeline(path: Path, container: str, codec: str, pieces: list[tuple[float, np.ndarray]],
                      video_s: float = 0.0) -> Path:
    """16 kHz mono `pieces` (start in seconds on the container's timeline, samples) as `codec` in
    `container`, with `video_s` seconds of 10 fps video from 0 where asked: what a screen recorder, a
    WebRTC recording's pause in transmission or an editor's export writes."""
    from fractions import Fraction

    with av.open(str(path), "w", format=container) as out:
        audio = out.add_stream(codec, rate=16000, layout="mono")
        video = out.add_stream("mpeg4", rate=10) if video_s else None  # every stream before the first packet
        if video is not None:
            video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        for start, samples in pieces:
            to_codec = av.AudioResampler(format=audio.format.name, layout="mono", rate=16000)
            frame = av.AudioFrame.from_ndarray(samples[None].astype(np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.time_base, frame.pts = 16000, Fraction(1, 16000), round(start * 16000)
            for piece in to_codec.resample(frame):
                for packet in audio.encode(piece):
                    out.mux(packet)
        for packet in audio.encode(None):
            out.mux(packet)
        if video is not None:
            for k in range(round(video_s * 10)):
                image = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
                image.pts = k
                for packet in video.encode(image):
                    out.mux(packet)
            for packet in video.encode(None):
                out.mux(packet)
    return path


def test_audio_shorter_than_its_video_or_a_second_track_is_intact(original, tmp_path):
    """The container's duration is its longest stream's: a video running 0.5 s past the audio had the
    file called damaged or truncated (exit 1, PartialAnalysis from analyze)."""
    seconds = len(original) / 16000
    path = mux_on_a_timeline(tmp_path / "screen.mp4", "mp4", "aac", [(0.0, original)], video_s=seconds + 0.5)
    assert av.open(str(path)).duration / 1e6 > seconds + 0.4  # the container's: the video's
    result = emolive.analyze(path)
    assert result.error == "" and result.whole["end"] == pytest.approx(seconds, abs=0.05)


@pytest.mark.parametrize("container, video_s", [("matroska", 0.0), ("matroska", 12.0)])
def test_a_pause_in_the_timestamps_or_a_late_start_is_silence_keeping_the_container_s_times(
        original, tmp_path, container, video_s, caplog):
    """Frames were joined end to end, whatever their timestamps said: after a 3 s pause in a WebRTC
    recording every estimate came 3 s early and the file was called cut at its end; audio starting 2 s
    into a video came 2 s early against it."""
    first, second = original[:16000 * 3], original[16000 * 3:]
    late = 2.0 if video_s else 0.0  # audio alone: its own start is the container's
    path = mux_on_a_timeline(tmp_path / "call.mkv", container, "pcm_s16le",
                             [(late, first), (late + 3.0 + 3.0, second)], video_s=video_s)
    with caplog.at_level("INFO"):
        decoded, error = streamed(path)
    assert error is None
    quiet = 16000 * 3
    expected = np.concatenate([np.zeros(round(late * 16000)), first, np.zeros(quiet), second])
    assert len(decoded) == len(expected)
    # 16-bit PCM: each sample within half a step of 1/32768
    np.testing.assert_allclose(decoded, expected, atol=2 / 32768)
    assert "its timestamps leave" in caplog.text and "heard as silence" in caplog.text
