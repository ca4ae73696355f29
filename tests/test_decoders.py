"""Phone, browser and video-call recordings (.webm, .m4a, .mp4, .mp3) are read in every entry point,
and a damaged or truncated file is reported, never silently cut.

The containers are encoded here with PyAV's own FFmpeg from real speech, so the test knows what
each file must decode to.
"""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import emolive
from tests.conftest import corpus_files, read_audio
from emolive.engine.sources import FileSource
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


@pytest.mark.parametrize("content", [b"", b"\x00\x01 not audio" * 100])
def test_an_unreadable_file_is_one_error_naming_it(tmp_path, content):
    bad = tmp_path / "bad.m4a"
    bad.write_bytes(content)
    with pytest.raises(emolive.EmoliveError, match="bad.m4a"):
        emolive.analyze(bad)


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
