"""The window read by a person: A/V/D as numbers, the first window's wait in words, speech turns marked on
the traces, the neutral line named, and the speech light off once the input has ended (Qt offscreen)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import emolive
from tests.conftest import corpus_files, read_audio
from tests.test_gui import choose_file, play, window  # noqa: F401  (window is a fixture)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def two_turns(tmp_path_factory):
    clips = [read_audio(p) for p in corpus_files("ravdess", every=300, limit=2)]
    gap = np.zeros(24000, np.float32)
    path = tmp_path_factory.mktemp("gui") / "two_turns.flac"
    sf.write(path, np.concatenate([gap, clips[0], gap, clips[1], gap]), 16000)
    return path


def test_before_the_first_estimate_the_wait_is_said_in_words(window):
    assert window.avd_label.text() == "A – · V – · D – (first estimate after 3 s of audio)"
    assert window.speech.text() == "no input"


def test_numbers_turn_marks_neutral_label_and_the_light_after_the_input_ends(qtbot, window, two_turns):
    choose_file(window, two_turns)
    assert play(qtbot, window)
    latest = window.history.latest
    assert window.avd_label.text() == (f"A {latest['activation']:.2f} · V {latest['valence']:.2f} · "
                                       f"D {latest['dominance']:.2f}")
    turns = emolive.analyze(two_turns).turns
    marks = [m for m in window.traces.turn_marks if m.isVisible()]
    assert len(marks) == len(turns) == 2
    for mark, turn in zip(marks, turns):
        assert mark.getRegion() == pytest.approx((turn["start"], turn["end"]))
    labels = [item for item in window.traces.getPlotItem().items if hasattr(item, "label") and item.label]
    assert [item.label.toPlainText() for item in labels] == ["neutral (4)"]
    assert window.speech.text() == "no input"  # the input ended: no window is speech any more


def test_model_details_are_one_click_away_and_read_from_the_bundle(qtbot, window):
    from PySide6.QtCore import Qt

    qtbot.mouseClick(window.model_button, Qt.MouseButton.LeftButton)
    box = window.provenance_box
    assert box is not None and box.isVisible()
    qtbot.waitUntil(lambda: "architecture" in box.text(), timeout=10000)  # read on a thread of its own
    text = box.text()
    meta = emolive.load_model("student").meta
    assert "model: student" in text and f"architecture: {meta.architecture}" in text
    corpora = ", ".join(Path(p).parent.name for p in meta.training["data"])  # .../corpora/<name>/manifest.csv
    assert f"training data: {corpora}" in text and corpora
    assert "licence: " in text
    first_metric = next(iter(meta.metrics))
    assert f"  {first_metric}" in text  # every recorded metric is listed, nested keys joined with " / "
    box.close()


def test_model_details_open_at_once_while_a_slow_model_is_read(qtbot, window, monkeypatch):
    """Reading a model for its details (the teacher loads Whisper: over a second) never holds the
    window: the box opens at once, the window's timers keep firing, and the details follow."""
    import threading

    from PySide6.QtCore import Qt, QTimer

    import emolive.engine.plugin as plugin_module

    student, release = emolive.load_model("student"), threading.Event()

    def slow_load(name):
        assert release.wait(10.0)
        return student
    monkeypatch.setattr(plugin_module, "load_model", slow_load)
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    qtbot.mouseClick(window.model_button, Qt.MouseButton.LeftButton)
    box = window.provenance_box
    assert box.isVisible() and "reading its bundle" in box.text()
    qtbot.waitUntil(lambda: len(ticks) >= 5, timeout=5000)  # the event loop runs while the model is read
    assert "reading its bundle" in box.text()
    release.set()
    qtbot.waitUntil(lambda: "architecture" in box.text(), timeout=10000)
    timer.stop()
    box.close()
