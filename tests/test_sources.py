"""Sources deliver exactly the audio they were given, as float32 mono 16 kHz, and fail with one-line errors."""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import sounddevice as sd
import soundfile as sf
import soxr

from tests.conftest import corpus_files, read_audio
from emolive.engine.sources import (AudioSourceError, FileSource, GStreamerSource, InputDevice, MicrophoneOptions,
                            MicrophoneSource, RawPcmSource, find_input_device, open_source)
from emolive.engine.sources.microphone import check_channels, choose_rate
from emolive.engine.sources.pcm import read_pcm
from emolive.engine.sources.ring import FrameRing
from emolive.engine.sources.trim import TrimmedSource

FLACS = [str(path) for path in corpus_files("emodb", limit=5)]
OK = sd.CallbackFlags()
OVERFLOW = sd.CallbackFlags(2)  # paInputOverflow


def speech(n_files: int = 1) -> np.ndarray:
    return np.concatenate([read_audio(path) for path in FLACS[:n_files]])


def collect(source) -> np.ndarray:
    with source:
        return np.concatenate(list(source.blocks()))


def assert_one_line_error(excinfo: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


class FakeStream:
    """Stands in for sounddevice.InputStream: keeps the callback PortAudio would be given."""

    def __init__(self, **kwargs) -> None:
        self.kwargs = kwargs
        self.callback = kwargs["callback"]
        self.active = False

    def start(self) -> None:
        self.active = True

    def stop(self) -> None:
        self.active = False

    def close(self) -> None:
        pass


def fake_microphone(rate: float = 16000, channels: int = 1, chosen: tuple[int, ...] = (),
                    **kwargs) -> tuple[MicrophoneSource, FakeStream]:
    streams: list[FakeStream] = []
    source = MicrophoneSource(MicrophoneOptions(InputDevice(7, "fake mic", rate, channels), chosen),
                              stream_factory=lambda **kw: streams.append(FakeStream(**kw)) or streams[-1], **kwargs)
    return source, streams[0]


def collect_until_lost(source: MicrophoneSource) -> np.ndarray:
    """A fake stream that goes inactive is a device that disappeared: everything captured before it
    arrives, then the one-line error."""
    blocks = []
    with source, pytest.raises(AudioSourceError) as excinfo:
        for block in source.blocks():
            blocks.append(block)
    assert_one_line_error(excinfo, "microphone 'fake mic'", "stopped", "--reconnect")
    return np.concatenate(blocks)


def feed(stream: FakeStream, audio: np.ndarray, frames: int, pause: float = 0.0) -> None:
    for i in range(0, len(audio), frames):
        block = audio[i:i + frames].reshape(len(audio[i:i + frames]), -1)
        stream.callback(block, len(block), None, OK)
        time.sleep(pause)
    stream.active = False


# ---- microphone (the PortAudio callback driven with recorded blocks) ----

def test_microphone_delivers_callback_blocks_intact_and_in_order_while_consumed_concurrently():
    audio = speech(5)  # ~12 s through a 0.25 s ring: wraps many times
    source, stream = fake_microphone(ring_seconds=0.25)
    assert stream.kwargs["device"] == 7 and stream.kwargs["samplerate"] == 16000
    producer = threading.Thread(target=feed, args=(stream, audio, 512, 0.003))  # ~10x real time
    producer.start()
    received = collect_until_lost(source)
    producer.join()
    assert source.stats.dropped_blocks == 0
    np.testing.assert_array_equal(received, audio)


def test_microphone_at_44k1_stereo_is_downmixed_and_resampled():
    mono = soxr.resample(speech(1), 16000, 44100).astype(np.float32)
    stereo = np.stack([mono * 1.5, mono * 0.5], axis=1)  # mean is `mono`
    source, stream = fake_microphone(44100, 2)
    feed(stream, stereo, 441)
    assert source.channels == (1, 2) and "channels 1+2 of 2 mixed" in source.description  # stereo: mixed whole
    received = collect_until_lost(source)
    expected = soxr.resample(mono, 44100, 16000)
    assert len(received) == len(expected)
    # soxr streaming vs one call: the same filter over the same samples, split into other blocks; what
    # can differ is float32 rounding in the filter sums (~1e-7 of full scale on any CPU), 100x below 1e-5
    np.testing.assert_allclose(received, expected, atol=1e-5)


def test_microphone_counts_overruns_when_the_consumer_does_not_read():
    audio = speech(3)
    assert len(audio) >= 100 * 512
    source, stream = fake_microphone(ring_seconds=1.0)  # 16000 frames = 31 blocks of 512 (+ 128 free frames)
    blocks = [audio[i:i + 512].reshape(-1, 1) for i in range(0, 100 * 512, 512)]
    for block in blocks:
        stream.callback(block, 512, None, OK)
    stream.callback(blocks[0], 512, None, OVERFLOW)  # two losses: PortAudio's, and this block (ring still full)
    assert source.stats.dropped_blocks == 100 - 31 + 2
    stream.active = False
    np.testing.assert_array_equal(collect_until_lost(source), audio[:31 * 512])  # what was kept is intact


def test_microphone_overflow_status_is_counted_and_the_block_still_kept():
    source, stream = fake_microphone()
    block = speech(1)[:512].reshape(-1, 1)
    stream.callback(block, 512, None, OVERFLOW)
    stream.active = False
    assert source.stats.dropped_blocks == 1
    np.testing.assert_array_equal(collect_until_lost(source), block[:, 0])


def test_microphone_mixes_only_the_chosen_channels():
    rng = np.random.default_rng(4)
    audio = rng.standard_normal((16000, 6)).astype(np.float32)  # six inputs, each distinct
    for chosen, opened, expected in [((), 1, audio[:, 0]),  # a many-channel device defaults to its first
                                     ((3,), 3, audio[:, 2]),
                                     ((2, 5), 5, audio[:, [1, 4]].mean(axis=1))]:
        source, stream = fake_microphone(channels=6, chosen=chosen)
        assert stream.kwargs["channels"] == opened  # PortAudio opens channels 1..N: up to the highest asked for
        feed(stream, audio[:, :opened], 800)
        np.testing.assert_allclose(collect_until_lost(source), expected, atol=1e-6)
    assert "channel 1 of 6" in fake_microphone(channels=6)[0].description


def test_channel_choice_is_checked_against_the_device():
    device = InputDevice(3, "USB interface", 48000.0, 8)
    assert check_channels(device, ()) == (1,) and check_channels(device, (8, 2)) == (8, 2)
    assert check_channels(InputDevice(4, "headset", 48000.0, 2), ()) == (1, 2)
    with pytest.raises(AudioSourceError) as excinfo:
        check_channels(device, (9,))
    assert_one_line_error(excinfo, "'USB interface' has channels 1-8", "channel 9 does not exist")
    # named twice: refused, as for a file (the microphone had dropped the second without a word)
    with pytest.raises(AudioSourceError) as excinfo:
        check_channels(device, (8, 2, 8))
    assert_one_line_error(excinfo, "'USB interface': channel 8 is given twice")


def test_rate_is_the_device_default_else_the_first_common_rate_it_accepts():
    device = InputDevice(3, "mic", 22050.0, 1)
    assert choose_rate(device, lambda rate: True) == 22050.0
    assert choose_rate(device, lambda rate: rate in (44100.0, 16000.0)) == 44100.0
    with pytest.raises(AudioSourceError) as excinfo:
        choose_rate(device, lambda rate: False)
    assert_one_line_error(excinfo, "'mic' accepts none of the rates 22050, 48000")


def test_frame_ring_round_trips_random_chunkings_across_wraparound():
    rng = np.random.default_rng(1)
    ring, audio, out, pos = FrameRing(97, 2), rng.standard_normal((5000, 2)).astype(np.float32), [], 0
    while pos < len(audio):
        n = int(rng.integers(1, 60))
        if ring.write(audio[pos:pos + n]):
            pos += n
        if rng.random() < 0.5:
            out.append(ring.read())
    out.append(ring.read())
    np.testing.assert_array_equal(np.concatenate(out), audio)


@pytest.fixture
def no_sound_card(monkeypatch):
    monkeypatch.setattr(sd, "query_devices", lambda *a, **k: sd.DeviceList([]))


def test_no_input_device_is_a_one_line_error(no_sound_card):
    with pytest.raises(AudioSourceError) as excinfo:
        MicrophoneSource()
    assert_one_line_error(excinfo, "no audio input device", "emolive devices", "--source FILE")


def test_input_device_selection_by_name_substring_and_index(monkeypatch):
    devices = [{"index": 0, "name": "HDMI out", "max_input_channels": 0, "default_samplerate": 48000.0},
               {"index": 1, "name": "USB Headset Mic", "max_input_channels": 1, "default_samplerate": 48000.0},
               {"index": 2, "name": "Built-in Mic", "max_input_channels": 2, "default_samplerate": 44100.0}]
    monkeypatch.setattr(sd, "query_devices", lambda *a, **k: sd.DeviceList(devices))
    assert find_input_device("usb").index == 1
    assert find_input_device(2).name == "Built-in Mic"
    assert find_input_device("2").channels == 2
    with pytest.raises(AudioSourceError) as excinfo:
        find_input_device("mic")
    assert_one_line_error(excinfo, "several input devices match 'mic'")
    with pytest.raises(AudioSourceError) as excinfo:
        find_input_device(" ")  # a script's unset variable: every device matched
    assert_one_line_error(excinfo, "an empty device name matches every device")
    with pytest.raises(AudioSourceError):
        find_input_device(0)  # an output-only device is not an input
    # a name given whole wins over the names it is part of: ALSA's "pulse" beside a "pulsemic" could only
    # be picked by its index, which moves
    devices += [{"index": 3, "name": "pulse", "max_input_channels": 32, "default_samplerate": 44100.0},
                {"index": 4, "name": "pulsemic", "max_input_channels": 2, "default_samplerate": 44100.0}]
    assert find_input_device("Pulse").index == 3 and find_input_device("pulsem").index == 4


# ---- files ----

def test_flac_at_16k_streams_exactly_its_samples():
    expected = read_audio(FLACS[0])
    source = FileSource(FLACS[0], block_size=1000)
    blocks = list(source.blocks())
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks) and len(blocks) > 1
    np.testing.assert_array_equal(np.concatenate(blocks), expected)
    assert source.stats.samples == len(expected) and source.stats.blocks == len(blocks)


@pytest.mark.parametrize("block_size", [1, 333, 1600, 10**6])
def test_stereo_44k1_wav_is_downmixed_and_resampled_like_the_whole_file(tmp_path, block_size):
    rng = np.random.default_rng(2)
    stereo = (0.1 * rng.standard_normal((22050, 2))).astype(np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, 44100, subtype="FLOAT")
    received = collect(FileSource(path, block_size=block_size))
    expected = soxr.resample(stereo.mean(axis=1), 44100, 16000)
    assert len(received) == len(expected) == 8000
    # as above, on 0.1-scale noise: float32 filter rounding ~1e-7 whatever the block split or CPU
    np.testing.assert_allclose(received, expected, atol=1e-6)


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 44100])
def test_a_file_s_own_rate_is_kept_for_the_narrowband_warning_and_the_audio_still_streams(tmp_path, caplog, rate):
    """The source only converts; the warning is the runner's or the batch's, who know the model
    (tests/test_batch_api.py), so the source itself says nothing."""
    path = tmp_path / "call.wav"
    sf.write(path, np.zeros(rate, np.float32), rate)  # one second
    with caplog.at_level("WARNING"):
        source = FileSource(path, block_size=100)
        received = collect(source)
    assert len(received) == 16000 and source.input_rate == rate and caplog.records == []
    assert TrimmedSource(FileSource(path), 0.5).input_rate == rate
    # a stretch is at hand where its recording is (batched from its first window: the same output every run)
    assert TrimmedSource(FileSource(path), 0.5).at_hand
    assert not TrimmedSource(FileSource(path, realtime=True), 0.5).at_hand


def test_realtime_pacing_takes_the_audio_duration(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, np.zeros(4800, np.float32), 16000)  # 0.3 s
    started = time.monotonic()
    collect(FileSource(path, realtime=True))
    # pacing never returns early (sleep only lengthens), so the lower bound holds on any machine; the
    # upper one only catches a pacing bug (seconds), with 10x room for a busy machine
    assert 0.28 <= time.monotonic() - started < 3.0
    started = time.monotonic()
    collect(FileSource(path))
    assert time.monotonic() - started < 0.25  # unpaced: under the 0.28 s pacing must take, ~1 ms in practice


def test_bad_files_are_one_line_errors(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "corrupt.flac").write_bytes(b"fLaC" + np.random.default_rng(3).bytes(5000))
    sf.write(tmp_path / "no_samples.wav", np.zeros(0, np.float32), 16000)
    cases = {"empty.wav": "is empty (0 bytes)", "corrupt.flac": "cannot read", "no_samples.wav": "contains no samples",
             "missing.wav": "not found"}
    for name, fragment in cases.items():
        with pytest.raises(AudioSourceError) as excinfo:
            collect(FileSource(tmp_path / name))
        assert_one_line_error(excinfo, fragment, name)


def delivered_until_error(source) -> tuple[np.ndarray, pytest.ExceptionInfo]:
    """Every sample `source` delivers before its AudioSourceError, and that error."""
    blocks = []
    with source, pytest.raises(AudioSourceError) as excinfo:
        for block in source.blocks():
            blocks.append(block)
    return np.concatenate(blocks), excinfo


def test_non_finite_samples_are_reported_with_their_time_after_every_sample_before_them(tmp_path):
    audio = speech(1)
    audio[20000] = np.nan  # 1.25 s: a quarter into analyze's second 1 s read
    sf.write(tmp_path / "nan.wav", audio, 16000, subtype="FLOAT")
    source = FileSource(tmp_path / "nan.wav", block_size=16000)
    delivered, excinfo = delivered_until_error(source)
    assert_one_line_error(excinfo, "non-finite", "1.250 s")
    np.testing.assert_array_equal(delivered, audio[:20000])
    assert source.stats.samples == 20000


def test_a_64_bit_sample_beyond_float32_is_out_of_range_not_non_finite(tmp_path):
    """A DOUBLE file may hold 1e40, which float32 cannot: the cast would make it Inf, and the error
    would blame a NaN or Inf the file does not hold."""
    audio = speech(1).astype(np.float64)
    audio[20000] = 1e40
    sf.write(tmp_path / "huge.wav", audio, 16000, subtype="DOUBLE")
    delivered, excinfo = delivered_until_error(FileSource(tmp_path / "huge.wav", block_size=16000))
    assert_one_line_error(excinfo, "huge.wav", "out of range at 1.250 s")
    assert "non-finite" not in str(excinfo.value)
    np.testing.assert_array_equal(delivered, audio[:20000].astype(np.float32))


# ---- GStreamer ----

def test_gstreamer_audiotestsrc_sine_has_its_frequency():
    audio = collect(GStreamerSource("audiotestsrc freq=440 num-buffers=20 samplesperbuffer=4410 "
                                    "! audio/x-raw,rate=44100,channels=2"))
    assert len(audio) == 32000  # 20 x 0.1 s of 44.1 kHz stereo, downmixed and resampled to 16 kHz
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 440) < 1.0  # bins are 0.5 Hz: the peak's bin, exact


def test_gstreamer_uridecodebin_flac_matches_soundfile():
    expected = read_audio(FLACS[0])
    audio = collect(GStreamerSource(f"uridecodebin uri=file://{FLACS[0]}"))
    assert len(audio) == len(expected)
    # FLAC is lossless and 16 kHz mono needs no resampling: both paths give int16 / 32768, exact in
    # float32 on any CPU; 1e-6 (30x below one int16 step) is slack, a wrong sample is off by >= 3e-5
    np.testing.assert_allclose(audio, expected, atol=1e-6)


@pytest.mark.parametrize("description, fragment", [
    ("nosuchsrc", 'no element "nosuchsrc"'),
    ("uridecodebin uri=file:///nonexistent.flac", "/nonexistent.flac"),
])
def test_failing_gstreamer_pipeline_is_a_one_line_error(description, fragment):
    with pytest.raises(AudioSourceError) as excinfo:
        collect(GStreamerSource(description))
    assert_one_line_error(excinfo, "failed (exit", fragment)


def test_missing_gst_launch_names_the_apt_package(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(AudioSourceError) as excinfo:
        GStreamerSource("audiotestsrc")
    assert_one_line_error(excinfo, "gst-launch-1.0 not found", "apt install gstreamer1.0-tools")


def test_gstreamer_close_stops_an_endless_pipeline():
    source = GStreamerSource("audiotestsrc is-live=true")
    first = next(source.blocks())
    source.close()
    assert first.size > 0 and source._process.poll() is not None


# ---- raw PCM through a pipe ----

def write_in_odd_chunks(fd: int, payload: bytes) -> None:
    with os.fdopen(fd, "wb") as pipe:
        for i in range(0, len(payload), 1001):  # not a multiple of the sample size
            pipe.write(payload[i:i + 1001])
            pipe.flush()


@pytest.mark.parametrize("sample_format", ["f32le", "s16le"])
def test_raw_pcm_from_a_pipe(sample_format):
    audio = speech(1)
    payload = (audio.astype("<f4") if sample_format == "f32le" else np.round(audio * 32768).astype("<i2")).tobytes()
    read_fd, write_fd = os.pipe()
    writer = threading.Thread(target=write_in_odd_chunks, args=(write_fd, payload))
    writer.start()
    with os.fdopen(read_fd, "rb") as pipe:
        received = collect(RawPcmSource(pipe, sample_format=sample_format))
    writer.join()
    # f32le is bit-exact; s16le quantises to 1/32768 (error <= 1.5e-5, exact arithmetic on any CPU)
    np.testing.assert_allclose(received, audio, atol=0 if sample_format == "f32le" else 1e-4)


def test_raw_pcm_errors_on_stray_bytes_and_on_a_silent_producer():
    read_fd, write_fd = os.pipe()
    os.write(write_fd, np.zeros(10, "<f4").tobytes() + b"\x00\x00")
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe, pytest.raises(AudioSourceError) as excinfo:
        collect(RawPcmSource(pipe))
    assert_one_line_error(excinfo, "2 stray bytes")
    read_fd, write_fd = os.pipe()
    with pytest.raises(AudioSourceError) as excinfo:
        list(read_pcm(read_fd, "f32le", 1600, 0.2, "test pipe"))
    assert_one_line_error(excinfo, "test pipe delivered no audio for 0.2 s")
    os.close(read_fd), os.close(write_fd)


# ---- the factory ----

def test_open_source_picks_the_source_a_spec_names(no_sound_card):
    kinds = {"-": RawPcmSource, "gst:audiotestsrc num-buffers=1": GStreamerSource,
             "audiotestsrc num-buffers=1": GStreamerSource, "filesrc location=x.ogg ! decodebin": GStreamerSource,
             FLACS[0]: FileSource}
    for spec, kind in kinds.items():
        with open_source(spec) as source:
            assert type(source) is kind, spec
    with open_source(None, fallback=FLACS[0]) as source:
        assert isinstance(source, FileSource) and source.realtime and FLACS[0] in source.description
    with pytest.raises(AudioSourceError) as excinfo:
        open_source(None)
    assert_one_line_error(excinfo, "no audio input device")
    # a microphone's channel or --reconnect asked for: the demo clip played, the option silently dropped
    for asked in (MicrophoneOptions(channels=(5,)), MicrophoneOptions(reconnect=True)):
        with pytest.raises(AudioSourceError) as excinfo:
            open_source(None, fallback=FLACS[0], microphone=asked)
        assert_one_line_error(excinfo, "no audio input device")
    with pytest.raises(AudioSourceError) as excinfo:
        open_source("no/such/file.wav")
    assert_one_line_error(excinfo, "not found")


def test_a_file_that_cannot_be_reached_says_why_not_that_it_is_missing(tmp_path):
    """os.path.exists hides why a stat failed: a link loop, a name over 255 bytes or a folder that
    cannot be searched were all "audio file not found"."""
    from emolive.engine.sources import AudioSourceError, FileSource

    (tmp_path / "loop.flac").symlink_to("loop.flac")
    for path, reason in [(tmp_path / "loop.flac", "Too many levels of symbolic links"),
                         (tmp_path / ("a" * 300 + ".flac"), "File name too long")]:
        with pytest.raises(AudioSourceError) as caught:
            FileSource(path)
        assert str(caught.value) == f"cannot read {path}: {reason}"
