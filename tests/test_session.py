"""The one stream session: `stream` and `gui` declare the same options, and a missing microphone
means the demo clip at real time, said so, for every caller of `open_stream`."""
from __future__ import annotations

import pytest
import sounddevice as sd

from emolive.engine.cli import build_parser
from emolive.engine.defaults import DEFAULT_HOP_S, DEFAULT_WINDOW_S
from emolive.engine.runner import OFFLINE_BLOCK_SIZE
from emolive.engine.session import DEMO_CLIP, DEMO_NOTE, StreamConfig, open_stream
from emolive.engine.sources import DEFAULT_BLOCK_SIZE, FileSource, MicrophoneOptions


def test_stream_and_gui_parse_the_same_stream_options():
    parser = build_parser()
    argv = ["--source", "x.flac", "--device", "2", "--channel", "1", "--channel", "2", "--reconnect",
            "--model", "teacher", "--window", "2", "--hop", "0.4"]
    stream, gui = parser.parse_args(["stream", *argv]), parser.parse_args(["gui", *argv])
    shared = ("source", "device", "channel", "reconnect", "model", "window", "hop")
    assert {k: getattr(stream, k) for k in shared} == {k: getattr(gui, k) for k in shared}
    config = StreamConfig.from_args(stream)
    assert config.microphone == MicrophoneOptions("2", (1, 2), True)
    assert (config.source, config.model, config.window_s, config.hop_s) == ("x.flac", "teacher", 2.0, 0.4)


def test_defaults_come_from_one_place():
    for command in ("stream", "gui"):
        args = build_parser().parse_args([command])
        assert (args.window, args.hop) == (DEFAULT_WINDOW_S, DEFAULT_HOP_S)
    config = StreamConfig.from_args(build_parser().parse_args(["stream"]))
    assert config == StreamConfig(microphone=MicrophoneOptions())


@pytest.mark.parametrize("source, realtime, live, block", [
    ("x.flac", False, False, OFFLINE_BLOCK_SIZE),  # a file as fast as it reads: 1 s blocks
    ("x.flac", True, True, DEFAULT_BLOCK_SIZE),  # a paced file behaves like a voice
    (None, False, True, DEFAULT_BLOCK_SIZE),  # the microphone (or the demo clip standing in) is always live
])
def test_live_and_block_size_follow_the_source(source, realtime, live, block):
    config = StreamConfig(source=source, realtime=realtime)
    assert (config.live, config.block_size) == (live, block)


def test_without_a_microphone_the_demo_clip_plays_at_real_time_and_says_so(monkeypatch):
    monkeypatch.setattr(sd, "query_devices", lambda *a, **k: sd.DeviceList([]))
    with open_stream(StreamConfig()) as stream:
        assert isinstance(stream.source, FileSource) and stream.source.realtime
        assert stream.description == f"file {DEMO_CLIP}{DEMO_NOTE}"
    with open_stream(StreamConfig(source=str(DEMO_CLIP))) as named:  # a file asked for by name is not a stand-in
        assert named.description == f"file {DEMO_CLIP}" and not named.source.realtime
