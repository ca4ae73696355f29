"""GStreamer pipelines as sources: which --source strings are pipelines, and how long a pipeline is waited for."""
from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from emolive.engine.sources import AudioSourceError, GStreamerSource, open_source
from emolive.engine.sources.factory import is_pipeline

OLD_STALL_LIMIT_S = 10.0  # the silence after which every pipeline used to end with "delivered no audio"


def test_a_missing_file_with_a_bang_in_its_name_is_a_file_and_real_pipelines_stay_pipelines(tmp_path, speech):
    """'Great take!.wav' was run as a pipeline, and its error was gst-launch's "no element "Great"" instead
    of the missing file's."""
    for name in ("Great take!.wav", "take!2.flac", "wow!.MP3"):
        assert not is_pipeline(str(tmp_path / name)), name
        with pytest.raises(AudioSourceError, match="audio file not found"):
            open_source(str(tmp_path / name))
    for pipeline in ("audiotestsrc ! wavenc ! filesink location=out.wav", "filesrc location=a!b.wav ! decodebin",
                     "audiotestsrc!audioconvert", "audiotestsrc num-buffers=5"):
        assert is_pipeline(pipeline), pipeline
    path = tmp_path / "Great take!.flac"  # a pipeline ending in an audio file's name still runs as one
    sf.write(path, speech[:16000], 16000, subtype="PCM_16")
    with open_source(f"uridecodebin uri={path.as_uri()}") as source:
        assert isinstance(source, GStreamerSource) and sum(len(block) for block in source.blocks()) == 16000


def test_a_pipeline_that_ends_before_any_audio_is_an_error():
    """It exited 0 with "0 estimates from 0.00 s of audio", where empty stdin is an error."""
    with GStreamerSource("audiotestsrc num-buffers=0") as source, pytest.raises(AudioSourceError) as excinfo:
        list(source.blocks())
    assert "ended before any audio" in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_a_udpsrc_waiting_longer_than_the_old_stall_limit_for_its_sender_still_gets_the_audio():
    """A live source may rightly wait: the reader ended every pipeline silent for 10 s, so a udpsrc
    whose sender started later could not be used."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sent = np.linspace(-0.5, 0.5, 800, dtype="<f4")

    def send_late() -> None:
        time.sleep(OLD_STALL_LIMIT_S + 2)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(sent.tobytes(), ("127.0.0.1", port))

    caps = "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved"
    with GStreamerSource(f"udpsrc address=127.0.0.1 port={port} caps={caps}") as source:
        sender = threading.Thread(target=send_late)
        sender.start()
        first = next(source.blocks())
        sender.join()
    np.testing.assert_array_equal(first, sent)  # 16 kHz mono float32 in and out: passed through untouched


def test_an_8_khz_pipeline_is_warned_about_as_an_8_khz_file_is_and_a_chatty_one_still_streams_whole():
    """The pipeline's tail resampled an RTP call's 8 kHz to 16 kHz, so the source reported no rate and
    the narrowband warning a file of the same call gets never came. The rate is read from gst-launch's
    -v lines on stdout; the audio has a pipe of its own, so those lines (an `identity` prints one per
    buffer) can neither mix into it nor stall it."""
    from tests.test_cli_stream import stream

    with GStreamerSource("audiotestsrc num-buffers=30 samplesperbuffer=800 ! audio/x-raw,rate=8000 ! "
                         "identity silent=false") as source:
        received = sum(len(block) for block in source.blocks())
    assert source.input_rate == 8000.0 and received == 2 * 30 * 800 - 1  # soxr's edge: one sample short
    with GStreamerSource("audiotestsrc num-buffers=2") as source:
        list(source.blocks())
    assert source.input_rate == 16000.0
    # an element of the user's named as emolive's entry once was: the tail's name is its own
    narrow = stream("--no-publish", "--json", "--source",
                    "audiotestsrc num-buffers=50 ! audio/x-raw,rate=8000 ! identity name=emolive_entry")
    assert narrow.returncode == 0 and "8000 Hz audio holds nothing above 4000 Hz" in narrow.stderr, narrow.stderr
    wide = stream("--no-publish", "--json", "--source", "audiotestsrc num-buffers=50 ! audio/x-raw,rate=22050")
    assert wide.returncode == 0 and "holds nothing above" not in wide.stderr, wide.stderr


def test_a_pipeline_killed_from_outside_says_so():
    """It said "failed (exit -9): no error message"."""
    import signal

    with GStreamerSource("audiotestsrc is-live=true") as source, pytest.raises(AudioSourceError) as excinfo:
        for _ in source.blocks():
            source._process.send_signal(signal.SIGKILL)  # as `kill -9` of its gst-launch-1.0
    assert str(excinfo.value).endswith("was killed by SIGKILL")
