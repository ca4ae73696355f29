"""The control bar: start/stop, source and microphone channel, model, window/hop and CSV recording.

Source, channel, model, window and hop apply when the engine starts, so they are locked while it
runs; recording can be switched on and off at any time. The source list names each input device
with its channel count; the channel list beside it offers that device's channels.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFileDialog, QHBoxLayout, QInputDialog, QLabel,
                               QPushButton, QWidget)

from emolive.engine.defaults import DEFAULT_HOP_S, DEFAULT_MODEL, DEFAULT_WINDOW_S
from emolive.engine.features.config import FrontEndConfig
from emolive.engine.plugin import registered_models
from emolive.engine.session import StreamConfig
from emolive.engine.sources import AudioSourceError, InputDevice, MicrophoneOptions, list_input_devices
from emolive.engine.sources.microphone import describe_channels
from emolive.engine.windows import MAX_SECONDS

FRAME_S = FrontEndConfig().frame_shift / FrontEndConfig().sample_rate  # the shortest window or hop

Ask = Callable[[], "tuple[str, object] | None"]  # a dialog: the new item's (label, value), None if cancelled
CHOOSE_FILE, CHOOSE_PIPELINE, CHOOSE_BUNDLE = "file…", "GStreamer…", "bundle path…"
DEFAULT_INPUT = "default microphone (demo clip if none)"
AUDIO_FILES = "Audio (*.wav *.flac *.ogg *.mp3);;All files (*)"


def _spin(value: float, low: float, high: float, step: float, tip: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setDecimals(2)
    spin.setSuffix(" s")
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin


CHOICE_CHARS = 28  # characters a choice box is sized for


class ChoiceBox(QComboBox):
    """A combo box of (label, value) items ending in "choose…" actions, each asking for a new item;
    cancelling puts the previous choice back."""

    def __init__(self, items: list[tuple[str, object]], actions: dict[str, Ask]) -> None:
        super().__init__()
        # sized for a few dozen characters, not its longest item: a long file path or pipeline made the
        # window 3,340 px wide (the whole item is in the list and in its tooltip)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(CHOICE_CHARS)
        self.currentTextChanged.connect(self.setToolTip)
        for label, value in items:
            self.addItem(label, value)
        self._actions = actions
        for label in actions:
            self.addItem(label)
        self._previous = 0
        self.activated.connect(self._on_activated)

    def value(self) -> object:
        return self.currentData()

    def add_choice(self, label: str, value: object) -> None:
        """Add (or reselect) an item just above the actions and select it."""
        found = next((i for i in range(self.count()) if self.itemData(i) == value), -1)  # findData can't compare tuples
        if found < 0:
            found = self.count() - len(self._actions)
            self.insertItem(found, label, value)
        self.setCurrentIndex(found)
        self._previous = found

    def _on_activated(self, index: int) -> None:
        ask = self._actions.get(self.itemText(index)) if self.itemData(index) is None else None
        if ask is None:
            self._previous = index
            return
        chosen = ask()
        if chosen is None:
            self.setCurrentIndex(self._previous)
        else:
            self.add_choice(*chosen)


class ControlPanel(QWidget):
    """Emits start/stop requests and the CSV path to record to (None: stop recording)."""

    start_requested = Signal()
    stop_requested = Signal()
    record_changed = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.start_stop = QPushButton("Start")
        self.start_stop.clicked.connect(self._on_start_stop)
        self._devices = self._input_devices()
        self.source = ChoiceBox([(DEFAULT_INPUT, (None, None))] +
                                [(f"mic {d.index}: {d.name} ({d.channels} ch)", (None, d.index)) for d in self._devices],
                                {CHOOSE_FILE: self._ask_file, CHOOSE_PIPELINE: self._ask_pipeline})
        self.channel = QComboBox()
        self.channel.setToolTip("microphone channel: one input of a multi-input device, or the default mix")
        self.source.currentIndexChanged.connect(self._list_channels)
        self._list_channels()
        self.reconnect = False  # wait for a lost microphone to come back (emolive gui --reconnect)
        models = [(name, name) for name in sorted(registered_models())]
        self.model = ChoiceBox(models, {CHOOSE_BUNDLE: self._ask_bundle})
        self.model.add_choice(DEFAULT_MODEL, DEFAULT_MODEL)
        # the ranges `emolive stream` takes (engine.windows): one 20 ms frame to MAX_SECONDS, so an option
        # given on the command line is shown as it is, never clamped to another value
        self.window = _spin(DEFAULT_WINDOW_S, FRAME_S, MAX_SECONDS, 0.5, "window length: the audio each estimate is "
                            "made from")
        self.hop = _spin(DEFAULT_HOP_S, FRAME_S, MAX_SECONDS, 0.1, "hop: time between estimates")
        self.record = QPushButton("Record CSV…")
        self.record.setCheckable(True)
        self.record.toggled.connect(self._on_record)
        layout = QHBoxLayout(self)
        for label, widget in (("", self.start_stop), ("Source", self.source), ("Channel", self.channel),
                              ("Model", self.model), ("Window", self.window), ("Hop", self.hop), ("", self.record)):
            if label:
                layout.addWidget(QLabel(label))
            layout.addWidget(widget)
        layout.addStretch(1)
        self._running = False

    def run_config(self, *, realtime: bool = True) -> StreamConfig:
        spec, device = self.source.value()
        # waiting for a lost device is the microphone's; a file or pipeline chosen here has none to wait for
        microphone = MicrophoneOptions(device, self.channel.currentData() or (), self.reconnect and spec is None)
        return StreamConfig(source=spec, microphone=microphone, model=str(self.model.value()),
                            window_s=self.window.value(), hop_s=self.hop.value(), realtime=realtime)

    def choose_channels(self, channels: tuple[int, ...]) -> None:
        """Select these channels (as `--channel` gave them), adding the choice if the list lacks it."""
        found = self.channel.findText(_channel_label(channels))
        if found < 0:
            self.channel.addItem(_channel_label(channels), channels)
            found = self.channel.count() - 1
        self.channel.setCurrentIndex(found)

    def set_running(self, running: bool) -> None:
        self._running = running
        self.start_stop.setText("Stop" if running else "Start")
        for widget in (self.source, self.model, self.window, self.hop):
            widget.setEnabled(not running)
        self.channel.setEnabled(not running and self.channel.count() > 1)

    def attach_only(self) -> None:
        """Showing someone else's stream: there is no engine here to configure."""
        for widget in (self.source, self.channel, self.model, self.window, self.hop):
            widget.hide()
        for label in self.findChildren(QLabel):
            label.hide()

    def _on_start_stop(self) -> None:
        (self.stop_requested if self._running else self.start_requested).emit()

    def _on_record(self, checked: bool) -> None:
        path = QFileDialog.getSaveFileName(self, "Record estimates to CSV", "estimates.csv", "CSV (*.csv)")[0] \
            if checked else ""
        if checked and not path:
            self.record.setChecked(False)  # cancelled; re-enters with checked=False and emits None
            return
        self.record.setText(f"Recording {Path(path).name}" if path else "Record CSV…")
        self.record_changed.emit(path or None)

    @staticmethod
    def _input_devices() -> list[InputDevice]:
        try:
            return list_input_devices()
        except AudioSourceError:  # no PortAudio: files and pipelines still work
            return []

    def _list_channels(self) -> None:
        """The chosen device's channels: its default first, then each one alone; only "default" for others."""
        value = self.source.value()
        device = next((d for d in self._devices if value is not None and d.index == value[1]), None)
        self.channel.clear()
        default = f"default ({describe_channels(device.default_channels, device.channels)})" if device else "default"
        self.channel.addItem(default, ())
        for number in range(1, device.channels + 1) if device else ():
            self.channel.addItem(_channel_label((number,)), (number,))
        self.channel.setEnabled(self.channel.count() > 1)

    def _ask_file(self) -> tuple[str, object] | None:
        path = QFileDialog.getOpenFileName(self, "Play an audio file", "", AUDIO_FILES)[0]
        return (f"file {Path(path).name}", (path, None)) if path else None

    def _ask_pipeline(self) -> tuple[str, object] | None:
        text, ok = QInputDialog.getText(self, "GStreamer source", "Pipeline (e.g. audiotestsrc is-live=true):")
        return (f"gst {text}", ("gst:" + text, None)) if ok and text.strip() else None

    def _ask_bundle(self) -> tuple[str, object] | None:
        path = QFileDialog.getExistingDirectory(self, "Model bundle directory")
        return (f"bundle {Path(path).name}", path) if path else None


def _channel_label(channels: tuple[int, ...]) -> str:
    return f"channel{'s' if len(channels) > 1 else ''} {'+'.join(map(str, channels))}"
