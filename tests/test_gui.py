"""The desktop window on the offscreen platform: corpus audio through the real engine, a real ZeroMQ stream,
a GUI frozen while the engine runs, clean close, errors in the window, and `emolive gui --screenshot`."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import zmq
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from tests.conftest import REPO, corpus_files, interruptible, read_audio
from tests.test_listen import HOSTILE, frames, good_estimate
from emolive.engine.cli import main
from emolive.engine.plugin import load_model
from emolive.engine.runner import OFFLINE_BLOCK_SIZE, Runner
from emolive.engine.schema import estimate_payload, status_payload
from emolive.engine.sinks import ZmqPublisher
from emolive.engine.sinks.base import Sink
from emolive.engine.sources import AudioSource, FileSource, MicrophoneOptions
from emolive.gui.controls import CHOOSE_BUNDLE, DEFAULT_INPUT
from emolive.gui.history import EstimateHistory
from emolive.gui.level import SILENCE_DBFS, LevelTap, rms_dbfs
from emolive.gui.meters import status_text
from emolive.gui.window import MainWindow

pytestmark = pytest.mark.usefixtures("one_torch_thread")
EMOLIVE = str(Path(sys.executable).parent / "emolive")


class ListSink(Sink):
    def __init__(self) -> None:
        self.estimates: list[dict] = []

    def emit(self, estimate) -> None:
        self.estimates.append(estimate)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def corpus_clip() -> Path:
    """A RAVDESS utterance as it is in the corpus (2.4 s): several estimates at a 1 s window."""
    return corpus_files("ravdess", every=480, limit=1)[0]


@pytest.fixture(scope="module")
def speech_4s(tmp_path_factory, speech) -> Path:
    path = tmp_path_factory.mktemp("audio") / "speech4s.flac"
    sf.write(path, speech[:4 * 16000], 16000, subtype="PCM_16")
    return path


@pytest.fixture
def window(qtbot) -> MainWindow:
    win = MainWindow()
    win.pace_files = False
    qtbot.addWidget(win)
    win.show()
    return win


def choose_file(win: MainWindow, path: Path, *, window_s: float = 3.0, hop_s: float = 0.5) -> None:
    win.controls.source.add_choice(path.name, (str(path), None))
    win.controls.window.setValue(window_s)
    win.controls.hop.setValue(hop_s)


def play(qtbot, win: MainWindow) -> bool:
    """Click Start and wait until the run has ended and been drawn; True when it ended without an error."""
    with qtbot.waitSignal(win.run_finished, timeout=60_000) as finished:
        qtbot.mouseClick(win.controls.start_stop, Qt.MouseButton.LeftButton)
    return finished.args[0]


def offline_estimates(path: Path, **windows: float) -> list[dict]:
    sink = ListSink()
    with FileSource(path, block_size=OFFLINE_BLOCK_SIZE) as source:
        Runner(source, load_model("student"), [sink], **windows).run()
    return sink.estimates


def test_history_keeps_the_newest_rows_in_order():
    history = EstimateHistory(capacity=4)
    for i in range(6):
        history.append({"end": float(i), "activation": 1.0 + i, "valence": 2.0, "dominance": 3.0})
    assert history.total == 6 and history.rows()[:, 0].tolist() == [2.0, 3.0, 4.0, 5.0]
    assert history.rows(last_s=1.0)[:, 1].tolist() == [5.0, 6.0]


def test_a_new_run_with_the_last_runs_counts_is_still_drawn(qtbot, window, speech_4s):
    """The redraw's "anything new?" compared counts alone: a second run ending with the first one's count left
    the first one's curves drawn and the readout waiting. The class bars of the last run went on showing
    through the next run's start (or for good, when it failed)."""
    choose_file(window, speech_4s, window_s=1.0)
    assert play(qtbot, window), window.error
    first = window.history.version
    assert window.bars.names  # drawn
    window.history.clear()  # a run of the same length: the same counts, another run
    assert window.history.version != first
    choose_file(window, speech_4s.with_name("missing.flac"), window_s=1.0)
    assert not play(qtbot, window)
    assert window.bars.names == () and window.source_label.text() == "" and "not found" in window.error


def test_a_new_run_of_the_publisher_clears_the_last_runs_traces():
    """`emolive gui --connect` to a publisher that restarted drew the old run's curves and turns beside the
    new run's, joined by lines from 99.5 s back to 3 s."""
    history = EstimateHistory(capacity=8)

    def estimate(seq: int, end: float, stream: str = "default") -> dict:
        return {"seq": seq, "stream": stream, "end": end, "activation": 4.0, "valence": 4.0, "dominance": 4.0}

    for seq in range(5):
        history.append(estimate(seq, 97.5 + 0.5 * seq))
    history.add_turn({"kind": "turn", "start": 90.0, "end": 99.0})
    history.append(estimate(0, 3.0))
    assert history.rows()[:, 0].tolist() == [3.0] and history.turns == [] and history.total == 1
    history.append(estimate(1, 3.5))
    history.append(estimate(0, 3.0, stream="other"))  # another stream on the same address
    assert history.rows()[:, 0].tolist() == [3.0] and history.latest["stream"] == "other"


def test_level_is_rms_dbfs():
    sine = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
    assert rms_dbfs(sine) == pytest.approx(-3.01, abs=0.01)  # 20 log10(1/sqrt 2) = -3.0103; float32 sum ~1e-6 dB
    assert rms_dbfs(np.zeros(1600, np.float32)) == SILENCE_DBFS


def test_window_opens_with_its_controls(window):
    controls = window.controls
    sources = [controls.source.itemText(i) for i in range(controls.source.count())]
    models = [controls.model.itemText(i) for i in range(controls.model.count())]
    assert sources[0] == DEFAULT_INPUT and sources[-2:] == ["file…", "GStreamer…"]
    assert {"student", "teacher", CHOOSE_BUNDLE} <= set(models) and controls.model.value() == "student"
    assert controls.start_stop.text() == "Start" and window.history.total == 0
    assert window.traces.plotItem.getAxis("left").labelText.startswith("rating")


def test_garbage_in_cycles_dies_on_the_gui_thread_even_when_a_worker_allocates(qtbot, window):
    """A worker thread that allocates past every collection threshold must not finalise cyclic garbage
    (CI once crashed destroying a Qt object "Garbage-collecting" in the engine thread): the window's
    collector finalises it on the GUI thread's timer."""
    finalised_on: list[int] = []

    class InACycle:
        def __del__(self) -> None:
            finalised_on.append(threading.get_ident())

    garbage = InACycle()
    garbage.me = garbage
    del garbage
    kept: list[list] = []  # alive, so the allocation count stays past the thresholds until collected
    worker = threading.Thread(target=lambda: kept.append([[i] for i in range(200_000)]))
    worker.start()
    worker.join()
    assert finalised_on == []  # no automatic collection ran, in the worker or here
    qtbot.waitUntil(lambda: finalised_on != [], timeout=5_000)
    assert finalised_on == [threading.get_ident()]


def test_a_corpus_file_drives_the_traces_with_the_engines_values(qtbot, window, corpus_clip):
    choose_file(window, corpus_clip, window_s=1.0, hop_s=0.2)
    assert play(qtbot, window), window.error
    expected = offline_estimates(corpus_clip, window_s=1.0, hop_s=0.2)
    ends = [e["end"] for e in expected]
    assert window.history.total == len(expected) >= 3
    for name, curve in window.traces.curves.items():
        x, y = curve.getData()
        np.testing.assert_allclose(x, ends)
        # the same engine run twice on one machine, values only copied into plots (float32 -> float64):
        # 1e-6 is one float32 ulp at 7; differences across builds would be the model's own (see test_runner)
        np.testing.assert_allclose(y, [e[name] for e in expected], atol=1e-6)
    last = expected[-1]
    newest_x, newest_y = window.traces.newest.getData()  # each trace's newest estimate is a dot (a lone one shows)
    np.testing.assert_allclose(newest_x, [last["end"]] * 3)
    np.testing.assert_allclose(newest_y, [last[name] for name in window.traces.curves], atol=1e-6)
    dot_x, dot_y = window.plane.dot.getData()
    np.testing.assert_allclose([dot_x[0], dot_y[0]], [last["valence"], last["activation"]], atol=1e-6)
    assert len(window.plane.trail.getData()[0]) == min(len(expected) - 1, 20)
    np.testing.assert_allclose(window.bars.bars.opts["width"], list(last["classes"].values()), atol=1e-6)
    assert window.bars.names == tuple(last["classes"])
    status = window.status_label.text()
    assert "model student" in status and "dropped blocks 0" in status and "skipped windows 0" in status
    assert f"{len(expected)} estimates" in window.statusBar().currentMessage()


def test_status_line_counts_a_reconnected_device():
    status = status_payload(stream="default", dropped_blocks=0, skipped_windows=0, lag_s=0.0, wall=0.0)
    assert "device lost" not in status_text(None, status)
    status.update(device_gaps=2, gap_s=3.5)
    assert status_text(None, status).endswith("device lost and back 2x (3.5 s)")


def test_status_line_says_where_a_stream_ended():
    """A finished publisher and a quiet one looked alike under `gui --connect`: the final status says `ended`."""
    status = status_payload(stream="default", dropped_blocks=0, skipped_windows=0, lag_s=0.0, wall=0.0, ended=False)
    assert "ended" not in status_text(None, status)
    assert status_text(None, {**status, "ended": True}).endswith("stream ended")
    assert status_text(None, {**status, "ended": True, "end_reason": "stopped"}).endswith("stream was stopped")
    failed = {**status, "ended": True, "end_reason": "failed", "error": "a.flac is damaged\x1b[2J"}
    assert status_text(None, failed).endswith("stream failed: a.flac is damaged\\x1b[2J")  # a reason can't move the cursor


def test_level_tap_reports_the_inner_sources_losses():
    class Reconnected(AudioSource):  # what a microphone that was lost once reports
        def _read_blocks(self):
            yield np.ones(160, np.float32)

        def _dropped_blocks(self):
            return 3

        def _device_gaps(self):
            return 1, 2.5

        def close(self):
            pass

    tap = LevelTap(Reconnected("mic"))
    assert len(list(tap.blocks())) == 1
    assert (tap.stats.dropped_blocks, tap.stats.gaps, tap.stats.gap_s) == (3, 1, 2.5)


def test_source_list_shows_devices_with_their_channels_and_a_channel_can_be_picked(qtbot, monkeypatch):
    import sounddevice as sd

    devices = [{"index": 2, "name": "USB headset", "max_input_channels": 2, "default_samplerate": 48000.0},
               {"index": 5, "name": "8-in interface", "max_input_channels": 8, "default_samplerate": 96000.0}]
    monkeypatch.setattr(sd, "query_devices", lambda *a, **k: sd.DeviceList(devices))
    win = MainWindow()
    qtbot.addWidget(win)
    controls = win.controls
    labels = [controls.source.itemText(i) for i in range(controls.source.count())]
    assert labels[1:3] == ["mic 2: USB headset (2 ch)", "mic 5: 8-in interface (8 ch)"]
    assert controls.channel.count() == 1 and not controls.channel.isEnabled()  # the default device: nothing to pick
    controls.source.setCurrentIndex(2)
    channels = [controls.channel.itemText(i) for i in range(controls.channel.count())]
    assert channels == ["default (channel 1 of 8)"] + [f"channel {n}" for n in range(1, 9)]
    assert controls.run_config().microphone == MicrophoneOptions(5, (), False)
    controls.channel.setCurrentIndex(4)
    assert controls.run_config().microphone == MicrophoneOptions(5, (4,), False)
    controls.source.setCurrentIndex(1)
    assert controls.channel.itemText(0) == "default (channels 1+2 of 2 mixed)" and controls.channel.count() == 3
    controls.choose_channels((1, 2))  # as `emolive gui --channel 1 --channel 2` asks
    assert controls.run_config().microphone.channels == (1, 2)


def test_window_hop_and_csv_recording_controls(qtbot, window, corpus_clip, tmp_path, monkeypatch):
    target = tmp_path / "estimates.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    qtbot.mouseClick(window.controls.record, Qt.MouseButton.LeftButton)
    assert window.controls.record.isChecked()
    choose_file(window, corpus_clip, window_s=1.6, hop_s=0.4)
    assert play(qtbot, window), window.error
    # one recording, one run: the run's end closes it (the next run's rows had followed in the same table)
    assert not window.controls.record.isChecked() and "recorded to" in window.statusBar().currentMessage()
    assert play(qtbot, window), window.error
    expected = offline_estimates(corpus_clip, window_s=1.6, hop_s=0.4)
    with open(target, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == window.history.total == len(expected) >= 2
    assert np.diff([float(r["end"]) for r in rows]) == pytest.approx(0.4)  # sample counts / 16000: exact to 1e-15
    for row, estimate in zip(rows, expected):
        assert float(row["valence"]) == pytest.approx(estimate["valence"], abs=1e-6)  # CSV keeps repr(): exact


def test_a_recording_is_never_written_over_the_audio_the_run_plays(qtbot, window, corpus_clip, tmp_path,
                                                                     monkeypatch):
    """Record CSV… onto the file being played replaced the recording with the table, with no error;
    `stream --csv` refuses it."""
    playing = tmp_path / "take.flac"
    shutil.copy(corpus_clip, playing)
    choose_file(window, playing)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(playing), ""))
    qtbot.mouseClick(window.controls.record, Qt.MouseButton.LeftButton)
    assert playing.read_bytes() == corpus_clip.read_bytes() and not window.controls.record.isChecked()
    assert "the recording" in window.error and "is also an input" in window.error
    assert play(qtbot, window), window.error  # the run itself goes on
    # armed onto another file, which then becomes the source: Start refuses (the file had become the table)
    other = tmp_path / "other.flac"
    shutil.copy(corpus_clip, other)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(other), ""))
    qtbot.mouseClick(window.controls.record, Qt.MouseButton.LeftButton)
    assert window.controls.record.isChecked()
    choose_file(window, other)
    qtbot.mouseClick(window.controls.start_stop, Qt.MouseButton.LeftButton)
    assert not window.running and not window.controls.record.isChecked() and "is also an input" in window.error
    assert other.read_bytes() == corpus_clip.read_bytes()


def test_start_and_stop_a_paced_file(qtbot, window, speech_4s):
    window.pace_files = True
    choose_file(window, speech_4s, window_s=1.0)
    qtbot.mouseClick(window.controls.start_stop, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.history.total >= 1, timeout=20_000)
    assert window.controls.start_stop.text() == "Stop" and not window.controls.model.isEnabled()
    assert window.level.format().startswith("input")  # a live level, not "no audio"
    with qtbot.waitSignal(window.run_finished, timeout=10_000):
        qtbot.mouseClick(window.controls.start_stop, Qt.MouseButton.LeftButton)
    assert not window.feed.running and window.controls.start_stop.text() == "Start"
    assert window.controls.model.isEnabled() and window.statusBar().currentMessage().startswith("finished")


def test_a_frozen_gui_does_not_stall_the_engine(qtbot, window, speech_4s):
    window.pace_files = True
    choose_file(window, speech_4s, window_s=1.0)
    qtbot.mouseClick(window.controls.start_stop, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.history.total >= 1, timeout=20_000)
    feed = window.feed
    with qtbot.waitSignal(feed.signals.finished, timeout=20_000) as finished:
        sent, received = feed.sink.sent, window.history.total
        time.sleep(2.0)  # the event loop is blocked: nothing is drawn or received
        assert window.history.total == received
        assert feed.sink.sent - sent >= 3  # 4 hops of 0.5 s: the engine went on at its own pace
    stats = finished.args[0]
    assert stats.skipped_windows == 0 and stats.dropped_blocks == 0
    qtbot.waitUntil(lambda: window.history.total == feed.sink.sent == stats.estimates)  # the queue was only late


def test_close_stops_the_engine_and_leaves_no_thread(qtbot, speech_4s):
    baseline = threading.active_count()
    win = MainWindow()
    qtbot.addWidget(win)
    choose_file(win, speech_4s, window_s=1.0)
    win.show()
    win.start()
    qtbot.waitUntil(lambda: win.history.total >= 1, timeout=20_000)
    assert threading.active_count() > baseline
    win.close()
    assert not win.feed.running and threading.active_count() == baseline


def test_bad_file_and_bad_model_show_errors_in_the_window(qtbot, window, tmp_path, capfd, monkeypatch):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    choose_file(window, bad)
    assert not play(qtbot, window)
    assert "cannot read" in window.statusBar().currentMessage() and "notes.wav" in window.error
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path))
    model = window.controls.model
    model.setCurrentIndex(model.findText(CHOOSE_BUNDLE))
    model.activated.emit(model.currentIndex())
    assert model.value() == str(tmp_path)
    assert not play(qtbot, window)
    assert "a bundle is a directory with config.json" in window.statusBar().currentMessage()
    assert "Traceback" not in capfd.readouterr().err


def test_connect_mode_shows_a_real_zeromq_stream(qtbot):
    with ZmqPublisher("tcp://127.0.0.1:*") as publisher:
        win = MainWindow(connect=publisher.address)
        qtbot.addWidget(win)
        win.show()
        win.start()
        assert publisher.wait_for_subscriber(5.0)
        sent = [estimate_payload(seq=i, stream="s", start=0.5 * i, end=0.5 * i + 3, wall_start=0.0, wall_end=3.0,
                                 activation=1 + i, valence=7 - i, dominance=4.0, classes={"calm": 0.25, "sad": 0.75},
                                 speech=i % 2 == 0, voiced_ratio=0.4, model="remote", latency_ms=12.0)
                for i in range(5)]
        for estimate in sent:
            publisher.emit(estimate)
        publisher.status(status_payload(stream="s", dropped_blocks=2, skipped_windows=1, lag_s=0.1, wall=1.0))
        qtbot.waitUntil(lambda: win.history.total == 5 and win.history.latest_status is not None, timeout=5000)
        win.redraw()
        x, y = win.traces.curves["valence"].getData()
        assert list(x) == [e["end"] for e in sent] and list(y) == [e["valence"] for e in sent]
        assert "model remote" in win.status_label.text() and "skipped windows 1" in win.status_label.text()
        assert win.level.format() == "input level: no audio" and win.speech.text() == "speech"
        # the publisher's run ends: its last window's flag stayed green until the next run (20-35 s here), and
        # where the final estimate and status came in one poll, the next frame put the flag back for good
        publisher.emit({**sent[0], "seq": 5})  # speech
        publisher.status(status_payload(stream="s", dropped_blocks=2, skipped_windows=1, lag_s=0.1, wall=2.0,
                                        ended=True))
        qtbot.waitUntil(lambda: win.history.total == 6 and win.history.latest_status.get("ended"), timeout=5000)
        win.redraw()
        assert win.speech.text() == "no input"
        win.close()
        assert not win.feed.running


def test_connect_mode_says_a_silent_publisher_and_a_run_s_end(qtbot, monkeypatch):
    """A publisher killed (SIGKILL: no final status) left the window saying "running", its speech light green,
    for good; a run that ended left "running" on the left beside "stream ended" on the right."""
    monkeypatch.setattr("emolive.gui.window.QUIET_S", 0.5)
    with ZmqPublisher("tcp://127.0.0.1:*") as publisher:
        win = MainWindow(connect=publisher.address)
        qtbot.addWidget(win)
        win.start()
        assert publisher.wait_for_subscriber(5.0)
        publisher.emit(estimate_payload(seq=0, stream="s", start=0.0, end=3.0, wall_start=0.0, wall_end=3.0,
                                        activation=4.0, valence=4.0, dominance=4.0, classes={}, speech=True,
                                        voiced_ratio=0.5, model="remote", latency_ms=1.0))
        qtbot.waitUntil(lambda: win.speech.text() == "speech", timeout=5000)
        qtbot.waitUntil(lambda: "nothing heard from the stream for 0.5 s" in win.statusBar().currentMessage(),
                        timeout=5000)
        assert win.speech.text() == "no input"
        publisher.status(status_payload(stream="s", dropped_blocks=0, skipped_windows=0, lag_s=0.0, wall=1.0,
                                        ended=True, end_reason="stopped"))
        qtbot.waitUntil(lambda: win.statusBar().currentMessage() == "stream s was stopped", timeout=5000)
        win.close()


def test_connect_mode_shows_one_stream_of_a_publisher_with_two(qtbot):
    """Each stream has topics of its own, and the window drew two as one run restarted at every message:
    36 estimates, 36 clears, never a line. It shows the first heard until its run ends, or the one named."""
    def estimate(stream: str, seq: int) -> dict:
        return estimate_payload(seq=seq, stream=stream, start=0.5 * seq, end=0.5 * seq + 3, wall_start=0.0,
                                wall_end=3.0, activation=4.0, valence=4.0, dominance=4.0, classes={}, speech=True,
                                voiced_ratio=0.5, model="remote", latency_ms=1.0)

    with ZmqPublisher("tcp://127.0.0.1:*") as publisher:
        first, named = MainWindow(connect=publisher.address), MainWindow(connect=publisher.address, stream_id="right")
        for win in (first, named):
            qtbot.addWidget(win)
            win.start()
        while publisher.wait_for_subscriber(5.0) and not all(w.feed.running for w in (first, named)):
            qtbot.wait(10)
        qtbot.wait(300)  # both subscriptions in (each window's feed subscribes as it starts)
        for seq in range(4):
            publisher.emit(estimate("left", seq))
            publisher.emit(estimate("right", seq))
        qtbot.waitUntil(lambda: first.history.total == 4 and named.history.total == 4, timeout=5000)
        assert first.history.latest["stream"] == "left" and named.history.latest["stream"] == "right"
        assert "not shown: stream 'right'" in first.statusBar().currentMessage()
        assert "not shown: stream 'left'" in named.statusBar().currentMessage()
        # the shown run ends: the next stream heard is shown, as a new run
        publisher.status(status_payload(stream="left", dropped_blocks=0, skipped_windows=0, lag_s=0.0, wall=1.0,
                                        ended=True))
        publisher.emit(estimate("right", 4))
        qtbot.waitUntil(lambda: first.history.latest["stream"] == "right", timeout=5000)
        assert first.history.total == 1 and named.history.total == 5
        for win in (first, named):
            win.close()


def test_model_details_in_connect_mode_never_load_the_model_a_message_names(qtbot, monkeypatch):
    """A publisher names a local bundle path (or a 5000-character name): the details show the name,
    escaped, and load nothing."""
    import emolive.engine.plugin as plugin_module

    def no_load(*args, **kwargs):
        raise AssertionError("the GUI loaded a model because a message named it")
    monkeypatch.setattr(plugin_module, "load_model", no_load)
    with ZmqPublisher("tcp://127.0.0.1:*") as publisher:
        win = MainWindow(connect=publisher.address)
        qtbot.addWidget(win)
        win.start()
        assert publisher.wait_for_subscriber(5.0)
        for name in (str(REPO / "plugins" / "student" / "default"), "\x1b[2J" + "m" * 5000):
            publisher.emit(good_estimate(0, model=name))
            qtbot.waitUntil(lambda: win.history.latest is not None and win.history.latest["model"] == name, timeout=5000)
            qtbot.mouseClick(win.model_button, Qt.MouseButton.LeftButton)
            text = win.provenance_box.text()
            assert "named by the publisher" in text and "\x1b" not in text and len(text) < 600
            win.provenance_box.close()
        win.close()


def test_connect_mode_counts_hostile_messages_in_the_status_bar_and_goes_on(qtbot):
    publisher = zmq.Context.instance().socket(zmq.XPUB)
    publisher.setsockopt(zmq.LINGER, 0)
    publisher.setsockopt(zmq.SNDHWM, 0)
    port = publisher.bind_to_random_port("tcp://127.0.0.1")
    win = MainWindow(connect=f"tcp://127.0.0.1:{port}")
    qtbot.addWidget(win)
    win.start()
    for _ in range(2):  # the feed's two subscriptions (avd., status.): from here on it misses nothing
        qtbot.waitUntil(lambda: publisher.poll(0) != 0, timeout=5000)
        publisher.recv()
    subscribed = [m for m, _ in HOSTILE.values() if m[0].startswith((b"avd.", b"status."))]
    for message in subscribed:
        publisher.send_multipart(message)
    publisher.send_multipart(frames(good_estimate(0, model="\x1b]0;owned\x07remote")))
    qtbot.waitUntil(lambda: win.history.total == 1, timeout=10000)
    win.redraw()
    assert win.feed.running and win.error is None
    assert f"ignored {len(subscribed)} messages off the emolive schema" in win.statusBar().currentMessage()
    assert "\x1b" not in win.status_label.text() and "model \\x1b]0;owned" in win.status_label.text()
    win.close()
    publisher.close()


def test_connect_mode_at_a_port_that_is_no_zeromq_publishers_says_so(qtbot):
    """`gui --connect` at the WebSocket output's port had waited for the first estimate without a word."""
    from emolive.engine.sinks.websocket import WebSocketSink

    with WebSocketSink("127.0.0.1:0") as websocket:
        win = MainWindow(connect=f"tcp://{websocket.address}")
        qtbot.addWidget(win)
        win.start()
        qtbot.waitUntil(lambda: "gives no ZeroMQ publisher's handshake" in win.statusBar().currentMessage(),
                        timeout=15000)  # two handshakes of 3 s each fail first
        assert win.feed.running and win.error is None  # it goes on: a publisher may yet take the address
        win.close()


def test_screenshot_cli_writes_a_png_and_exits_0(tmp_path, corpus_clip):
    out = tmp_path / "shot.png"
    done = subprocess.run([EMOLIVE, "gui", "--source", str(corpus_clip), "--screenshot", str(out), "--window", "1.0"],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png_text(out) == {"emolive model": "student", "emolive classes": ",".join(student_classes())}


def test_the_window_warns_of_narrowband_audio_and_refuses_a_file_too_short_as_stream_does(tmp_path, corpus_clip):
    """The window's level meter wrapped the source and hid its rate and its being at hand: an 8 kHz file
    gave no narrowband warning, and a 6 ms one "finished: 0 estimates" with exit 0 (stream: exit 1, why)."""
    import soxr

    speech = sf.read(corpus_clip, dtype="float32")[0]
    sf.write(tmp_path / "call.wav", soxr.resample(speech, 16000, 8000), 8000)
    sf.write(tmp_path / "tiny.wav", speech[:100], 16000)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    narrow = subprocess.run([EMOLIVE, "gui", "--source", str(tmp_path / "call.wav"), "--screenshot",
                             str(tmp_path / "a.png")], capture_output=True, text=True, timeout=120, env=env)
    assert narrow.returncode == 0 and "8000 Hz audio holds nothing above 4000 Hz" in narrow.stderr, narrow.stderr
    tiny = subprocess.run([EMOLIVE, "gui", "--source", str(tmp_path / "tiny.wav"), "--screenshot",
                           str(tmp_path / "b.png")], capture_output=True, text=True, timeout=120, env=env)
    assert tiny.returncode == 1 and "shorter than one 25 ms frame" in tiny.stderr, tiny.stderr


def test_a_long_source_path_keeps_the_window_on_a_screen(tmp_path, corpus_clip):
    """A file 240 characters deep made a 3,340 px window: the source box sized to its longest item and the
    readout showed the whole path. Both are shortened (the whole in their tooltips)."""
    from emolive.gui.window import SIZE

    deep = tmp_path / ("a" * 120) / ("b" * 120)
    deep.mkdir(parents=True)
    shutil.copy(corpus_clip, deep / "x.flac")
    shot = tmp_path / "shot.png"
    done = subprocess.run([EMOLIVE, "gui", "--source", str(deep / "x.flac"), "--screenshot", str(shot)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stderr
    width = int.from_bytes(shot.read_bytes()[16:20], "big")  # the PNG header's IHDR width
    assert width <= SIZE.width() * 1.1, width  # the controls' row may ask a few pixels more than the 1280 set


def test_connect_refuses_the_options_of_a_stream_of_its_own_and_a_malformed_address_before_the_window():
    """`gui --connect ADDR --source f.wav --model teacher` opened a window showing ADDR, the options dropped;
    `gui --connect garbage` kept a window open with the error in its status bar (listen: exit 1)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    mixed = subprocess.run([EMOLIVE, "gui", "--connect", "tcp://127.0.0.1:5999", "--source", "f.wav", "--model",
                            "teacher"], capture_output=True, text=True, timeout=60, env=env)
    assert mixed.returncode == 2 and "--source, --model: for a stream of the window's own" in mixed.stderr
    garbage = subprocess.run([EMOLIVE, "gui", "--connect", "garbage"], capture_output=True, text=True, timeout=60,
                             env=env)
    assert garbage.returncode == 1 and garbage.stderr.startswith("emolive: error: malformed address 'garbage'")
    # an empty address ran the window's own engine; a wildcard host failed in the status bar ("Invalid argument")
    for address, said in (("", "malformed address ''"), ("tcp://*:5999", "host * is for a publisher")):
        refused = subprocess.run([EMOLIVE, "gui", "--connect", address], capture_output=True, text=True, timeout=60,
                                 env=env)
        assert refused.returncode == 1 and said in refused.stderr, refused.stderr
    alone = subprocess.run([EMOLIVE, "gui", "--stream-id", "left"], capture_output=True, text=True, timeout=60, env=env)
    assert alone.returncode == 2 and "--stream-id picks a stream of --connect's publisher" in alone.stderr


def png_text(path) -> dict[str, str]:
    """A PNG's tEXt chunks (key -> text), read by hand: the format is length, type, data, CRC."""
    data, found, at = path.read_bytes(), {}, 8
    while at < len(data):
        length = int.from_bytes(data[at:at + 4], "big")
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + length]
        if kind == b"tEXt":
            key, _, text = body.partition(b"\0")
            found[key.decode("latin-1")] = text.decode("latin-1")
        at += 12 + length
    return found


def student_classes() -> tuple[str, ...]:
    from emolive.engine.bundle import read_config
    from emolive.plugins.student import DEFAULT_BUNDLE

    return tuple(read_config(DEFAULT_BUNDLE)["class_names"])


def test_the_committed_screenshot_shows_the_shipped_student():
    """docs/screenshot.png (`make screenshot`) was made with the default student as it ships: the
    classes its bars show are the model's (a stale picture showed classes the model no longer has)."""
    assert png_text(REPO / "docs" / "screenshot.png") == {"emolive model": "student",
                                                           "emolive classes": ",".join(student_classes())}


def test_screenshot_of_a_missing_file_is_a_one_line_error(qtbot, tmp_path, capsys):
    code = main(["gui", "--source", str(tmp_path / "missing.wav"), "--screenshot", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "audio file not found" in err
    assert not (tmp_path / "x.png").exists()


def test_window_and_hop_follow_stream_s_rule_never_clamped(qtbot, tmp_path, capsys):
    """The spin boxes clamped --window 45 to 30 s and --hop 0.02 to 0.1 s without a word, and took
    --window 61 or 0.03, which stream refuses: now the same rule, the values shown as given."""
    from emolive.engine.cli import build_parser
    from emolive.gui.app import build_window

    for option, message in ((["--window", "61"], "longer than the 60 s"), (["--hop", "0.03"], "multiple of the 20 ms")):
        code = main(["gui", "--source", str(tmp_path / "x.wav"), *option, "--screenshot", str(tmp_path / "x.png")])
        assert code == 1 and message in capsys.readouterr().err
    window = build_window(build_parser().parse_args(["gui", "--window", "45", "--hop", "0.02"]))
    qtbot.addWidget(window)
    config = window.controls.run_config()
    assert (config.window_s, config.hop_s) == (45.0, 0.02)


def test_the_traces_hold_the_last_60_s_at_the_smallest_hop():
    """2400 rows were 60 s at a 25 ms hop, which no one can give: at the 20 ms frame they held 48 s."""
    history = EstimateHistory()
    for seq in range(4000):
        history.append(good_estimate(seq, start=0.02 * seq, end=0.02 * seq + 3.0))
    rows = history.rows(60.0)
    assert rows[-1, 0] - rows[0, 0] >= 59.98  # column 0: each row's end


def wait_until_catching(pid: int, signum: int, timeout_s: float = 60.0) -> None:
    """Until process `pid` has a handler of its own for `signum` (its /proc status's SigCgt mask)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/status") as status:
            caught = int(next(line.split()[1] for line in status if line.startswith("SigCgt:")), 16)
        if caught >> (signum - 1) & 1:
            return
        time.sleep(0.005)
    raise AssertionError(f"process {pid} never caught signal {signum}")


@pytest.mark.parametrize("delay", [0.0, 0.3, 1.5, 4.0])
def test_ctrl_c_at_any_moment_of_the_window_closes_it_and_exits_130(delay, tmp_path):
    """In its first second Ctrl-C aborted the interpreter inside shiboken's start, crashed it, printed
    a KeyboardInterrupt traceback or was lost (the window played on); SIGTERM killed it without
    closing the window. Both now close it as its button does, at any moment, and exit as `stream` does; so
    does SIGHUP (its terminal closed), which had killed it."""
    import signal

    clip = tmp_path / "speech.flac"
    sf.write(clip, np.concatenate([read_audio(p) for p in corpus_files("ravdess", limit=3)]), 16000)
    for signum, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)):
        gui = interruptible([EMOLIVE, "gui", "--source", str(clip)], env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # counted from when the command has its handlers (it catches SIGTERM, which Python leaves alone):
        # before, the interpreter is still starting or importing, where no Python program handles SIGTERM
        # (0.3 s after the start was still that on a loaded machine)
        wait_until_catching(gui.pid, signal.SIGTERM)
        time.sleep(delay)
        gui.send_signal(signum)
        try:
            _, err = gui.communicate(timeout=30)
        finally:
            gui.kill()
        assert gui.returncode == code and "Traceback" not in err and "Fatal" not in err, (signum, err)


def test_an_interrupted_screenshot_run_writes_no_picture(tmp_path):
    """Ctrl-C or SIGTERM closed the window, the cut-off run then finished all the same, and its picture
    ("finished: …") was written, or not, as a race went (2 of 4 tries), before exit 130 or 143. An endless
    pipeline is a run that only a signal ends."""
    import signal

    shot = tmp_path / "never.png"
    for signum, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        gui = interruptible([EMOLIVE, "gui", "--source", "audiotestsrc wave=pink-noise", "--screenshot", str(shot)],
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
        wait_until_catching(gui.pid, signal.SIGTERM)
        time.sleep(3.0)  # the run is under way
        gui.send_signal(signum)
        try:
            _, err = gui.communicate(timeout=30)
        finally:
            gui.kill()
        assert gui.returncode == code and not shot.exists(), (signum, err)


def test_a_screenshot_is_never_written_over_its_recording_nor_a_file_emptied(tmp_path, capsys):
    """--screenshot same.png --source same.png wrote the picture over the recording; a name QImage had
    no format for was emptied, then reported as not written."""
    clip = tmp_path / "take.png"  # a recording under a picture's name
    shutil.copy(corpus_files("emodb", limit=1)[0], clip)
    before = clip.read_bytes()
    assert main(["-q", "gui", "--source", str(clip), "--screenshot", str(clip)]) == 1
    assert "--screenshot" in capsys.readouterr().err and clip.read_bytes() == before
    notes = tmp_path / "notes.txt"
    notes.write_text("kept until a picture replaces it whole")
    assert main(["-q", "gui", "--source", str(corpus_files("emodb", limit=1)[0]), "--screenshot", str(notes)]) == 0
    assert notes.read_bytes().startswith(b"\x89PNG")
