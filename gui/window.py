"""The main window: a feed appends to the history, a 50 ms timer draws it.

Receiving an estimate costs an append (and a CSV row when recording); all drawing happens on the
redraw timer, and only when something changed, so bursts of estimates never stall the window
and the window never stalls the engine (it only ever reads what the feed has sent).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (QGridLayout, QHBoxLayout, QLabel, QMainWindow, QMessageBox, QPushButton, QVBoxLayout,
                               QWidget)

from emolive.engine.plugin import registered_models
from emolive.engine.row_writers import OutputError, check_not_an_input, check_not_in_bundle
from emolive.engine.schema import end_line, printable
from emolive.engine.session import DEMO_CLIP, summary
from emolive.engine.sources.factory import files_of_source
from emolive.engine.sinks import CsvSink, SinkError
from emolive.gui.controls import ControlPanel
from emolive.gui.engine_feed import EngineFeed
from emolive.gui.feed import Feed
from emolive.gui.gui_thread_gc import collect_on_gui_thread
from emolive.gui.history import EstimateHistory
from emolive.gui.meters import LevelMeter, SpeechLight, avd_text, status_text
from emolive.gui.plots import TRACE_SPAN_S, ClassBars, PlanePlot, TracesPlot
from emolive.gui.stream_choice import QUIET_S
from emolive.gui.zmq_feed import ZmqFeed

REDRAW_MS = 50  # 20 frames a second
SOURCE_CHARS = 60  # the source's description shown in the readouts, at most; longer ones lose their middle


def shortened(text: str, limit: int = SOURCE_CHARS) -> str:
    """`text` cut in its middle to `limit` characters (a path's folder goes, its file name stays): a long
    path or pipeline in the readouts made the window wider than any screen."""
    if len(text) <= limit:
        return text
    keep = limit - 1
    return f"{text[:keep // 2]}…{text[len(text) - (keep - keep // 2):]}"
SIZE = QSize(1280, 800)


class MainWindow(QMainWindow):
    """Runs the engine (or shows a stream at `connect`) and draws what arrives."""

    run_finished = Signal(bool)  # True when the run ended without an error
    provenance_read = Signal(object, str)  # (the details box it was read for, its text): from a reading thread

    def __init__(self, connect: str | None = None, stream_id: str | None = None) -> None:
        """`connect`: a publisher's address to show instead of a run of the window's own; `stream_id`: its
        stream to show (gui.stream_choice)."""
        super().__init__()
        collect_on_gui_thread()  # before any worker thread can run: cycles holding Qt objects die on this thread
        self.setWindowTitle("emolive: activation · valence · dominance")
        self.resize(SIZE)
        self.connect_address = connect
        self.stream_id = stream_id
        self.pace_files = True  # False plays files as fast as possible (--screenshot)
        self.history = EstimateHistory()
        self.feed: Feed | None = None
        self.running = False  # from start() until the feed's `finished` is handled, after all its estimates
        self.error: str | None = None
        self._csv: CsvSink | None = None
        self._drawn = (-1, -1, -1)  # history.version at the last plot redraw
        self._window_s: float | None = None  # the run's window length, for "first estimate after …"
        self._heard = 0.0  # --connect: when the publisher last sent anything (time.monotonic)
        self._quiet = False  # --connect: its silence has been said
        self._build()
        self.redraw_timer = QTimer(self)
        self.redraw_timer.setInterval(REDRAW_MS)
        self.redraw_timer.timeout.connect(self.redraw)
        self.redraw_timer.start()

    def _build(self) -> None:
        self.controls = ControlPanel()
        self.controls.start_requested.connect(self.start)
        self.controls.stop_requested.connect(self.stop)
        self.controls.record_changed.connect(self.record_to)
        if self.connect_address:
            self.controls.attach_only()
        self.traces, self.plane, self.bars = TracesPlot(), PlanePlot(), ClassBars()
        self.level, self.speech = LevelMeter(), SpeechLight()
        self.source_label, self.status_label = QLabel("stopped"), QLabel(status_text(None, None))
        self.avd_label = QLabel(avd_text(None, None if self.connect_address else self.controls.run_config().window_s))
        self.avd_label.setStyleSheet("font-size: 15pt; font-weight: bold;")
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)  # it shows a model name from the stream
        readouts = QHBoxLayout()
        self.model_button = QPushButton("Model details…")
        self.model_button.clicked.connect(self.show_provenance)
        self.provenance_read.connect(self._show_read_provenance)
        self.provenance_box: QMessageBox | None = None
        for widget in (self.avd_label, self.speech, self.level, self.source_label, self.model_button):
            readouts.addWidget(widget)
        readouts.addStretch(1)
        plots = QGridLayout()
        plots.addWidget(self.traces, 0, 0, 1, 2)
        plots.addWidget(self.plane, 1, 0)
        plots.addWidget(self.bars, 1, 1)
        plots.setRowStretch(0, 1)
        plots.setRowStretch(1, 1)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self.controls)
        layout.addLayout(readouts)
        layout.addLayout(plots, 1)
        self.setCentralWidget(central)
        self.statusBar().addPermanentWidget(self.status_label)

    def start(self) -> None:
        """Start a new run (clearing the plots), or reconnect to the stream."""
        if self.running:
            return
        if self._csv is not None and not self._recording_allowed(self._csv.path):
            return  # armed before the source or model changed: it would have written over them
        self.running = True
        self.history.clear()
        self.bars.draw({})  # the last run's, until this one's first estimate (or for good, if it fails)
        self.source_label.setText("")  # likewise: the source is named once it opens
        self.error = None
        self.statusBar().setStyleSheet("")
        self.statusBar().showMessage("starting…")
        self.feed = ZmqFeed(self.connect_address, stream_id=self.stream_id) if self.connect_address else \
            EngineFeed(self.controls.run_config(realtime=self.pace_files))
        signals, queued = self.feed.signals, Qt.ConnectionType.QueuedConnection
        signals.estimate.connect(self.on_estimate, queued)
        signals.status.connect(self.on_status, queued)
        signals.turn.connect(self.history.add_turn, queued)
        signals.started.connect(self.on_started, queued)
        signals.error.connect(self.show_error, queued)
        signals.notice.connect(self.on_notice, queued)
        signals.rejected.connect(self.statusBar().showMessage, queued)
        signals.finished.connect(self.on_finished, queued)
        self.controls.set_running(True)
        self._window_s = None if self.connect_address else self.controls.run_config().window_s
        self.avd_label.setText(avd_text(None, self._window_s))
        self.feed.start()

    def stop(self) -> None:
        if self.feed is not None:
            self.feed.stop()

    def on_started(self, description: str) -> None:
        self.source_label.setText(shortened(description))  # the whole of it as the tooltip
        self.source_label.setToolTip(description)
        self.statusBar().showMessage("running")

    def on_estimate(self, estimate: Mapping[str, Any]) -> None:
        self._heard_now()
        self.history.append(estimate)
        if self._csv is not None:
            self._write_csv(estimate)

    def on_status(self, status: Mapping[str, Any]) -> None:
        self._heard_now()
        self.history.latest_status = status
        ended = end_line(status)
        if self.connect_address and ended is not None and self.error is None:  # the left had gone on saying "running"
            self.statusBar().showMessage(ended)

    def _heard_now(self) -> None:
        self._heard = time.monotonic()
        if self._quiet:
            self._quiet = False
            self.statusBar().showMessage("running")

    def on_notice(self, message: str) -> None:
        """The source's news (a device lost, back): in the status bar, and no speech shown until the next
        estimate says otherwise."""
        self.statusBar().showMessage(message)
        self.speech.set_speech(None)

    def on_finished(self, stats: Any) -> None:
        self.running = False
        self.controls.set_running(False)
        recorded = self._csv.path if self._csv is not None else None
        # one recording, one run: kept on, the next run's rows had followed this one's in the same table, with
        # nothing to tell them apart (seq and times starting again)
        self.controls.record.setChecked(False)
        if self.error is None:
            self.statusBar().showMessage((f"finished: {summary(stats)}" if stats is not None else "stopped")
                                         + (f"; recorded to {shortened(recorded)}" if recorded else ""))
        self.redraw()
        self.speech.set_speech(None)  # no input, no speech: the last window's flag is history now
        self.run_finished.emit(self.error is None)

    def show_error(self, message: str) -> None:
        """Errors stay in the status bar, in red, until the next start."""
        self.error = message
        self.statusBar().setStyleSheet("color: #b00020; font-weight: bold;")
        self.statusBar().showMessage(f"error: {message}")

    def show_provenance(self) -> None:
        """The chosen model's training data, licence and results; with --connect, only the name the
        publisher sends: a reader never loads a model because a message named it (the name is the
        publisher's word, and loading it would read whatever local path it says). The box opens at
        once and the model is read on a thread of its own: loading the teacher (Whisper) had held
        the window, its plots and its level meter, for over a second."""
        if self.connect_address:
            latest = self.history.latest
            streamed = printable(str(latest["model"]), 120) if latest else "none yet"
            text = (f"model named by the publisher at {printable(self.connect_address, 120)}: {streamed}\n\n"
                    "Its training data and results are on the publishing machine: `emolive models` there.")
        else:
            name = str(self.controls.model.value())
            text = f"model {printable(name, 120)}: reading its bundle…"
        self.provenance_box = box = QMessageBox(QMessageBox.Icon.Information, "Model details", text, parent=self)
        box.setTextFormat(Qt.TextFormat.PlainText)  # names and metrics may come from anywhere
        box.open()
        if not self.connect_address:
            threading.Thread(target=self._read_provenance, args=(name, box), name="emolive-model-details",
                             daemon=True).start()

    def _read_provenance(self, name: str, box: QMessageBox) -> None:
        """On its own thread: model `name`'s details, handed to the GUI thread (provenance_read)."""
        from emolive.engine.errors import EmoliveError
        from emolive.engine.plugin import load_model
        from emolive.gui.provenance import provenance_text

        try:
            text = provenance_text(name, load_model(name).meta)
        except EmoliveError as exc:
            text = f"model {printable(name, 120)}: no bundle to read its provenance from ({printable(str(exc), 300)})"
        except Exception as exc:  # a plugin's own failure: said in the box, never lost on a thread
            text = f"model {printable(name, 120)}: reading it failed ({type(exc).__name__}: {printable(str(exc), 300)})"
        try:
            self.provenance_read.emit(box, text)
        except RuntimeError:  # the window closed while the model was read: nobody to tell
            pass

    def _show_read_provenance(self, box: QMessageBox, text: str) -> None:
        """The details read for `box`, if it is still the box shown (a later click opened another)."""
        if box is self.provenance_box:
            box.setText(text)

    def record_to(self, path: str | None) -> None:
        if self._csv is not None:
            self._csv.close()
            self._csv = None
        if path is not None and self._recording_allowed(path):
            try:
                self._csv = CsvSink(path)
            except SinkError as exc:
                self.show_error(str(exc))
                self.controls.record.setChecked(False)

    def _recording_allowed(self, path: str) -> bool:
        """Whether `path` may take the recording now (_check_recording); if not, said, and recording is off."""
        try:
            self._check_recording(path)
        except (SinkError, OutputError) as exc:
            self.show_error(str(exc))
            self.controls.record.setChecked(False)
            return False
        return True

    def _check_recording(self, path: str) -> None:
        """Refuse a recording over what the run reads, as `stream --csv` does: the audio it plays (the
        dialog's "replace?" did not say the file was that one, and the recording became the table) or a
        file of its model's bundle. The run's own when one runs, else the one the controls would start."""
        if self.connect_address:
            return
        running = self.feed if isinstance(self.feed, EngineFeed) and self.running else None
        config = running.config if running is not None else self.controls.run_config()
        # no source: the microphone, or the demo clip where there is none
        check_not_an_input(path, files_of_source(config.source) if config.source is not None else [str(DEMO_CLIP)],
                           "the recording")
        # before a run, a model named by path; an installed model's name is never a folder here (a folder
        # "student" in the current one had been taken for the installed student)
        chosen = None if config.model in registered_models() else config.model
        check_not_in_bundle(path, running.model if running is not None and running.model is not None else chosen,
                            "the recording")

    def _write_csv(self, estimate: Mapping[str, Any]) -> None:
        try:
            self._csv.emit(estimate)
        except SinkError as exc:
            self.show_error(f"recording stopped: {exc}")
            self.controls.record.setChecked(False)

    def redraw(self) -> None:
        """The timer's frame: the level every time, the plots when estimates arrived since the last frame."""
        feed, latest = self.feed, self.history.latest
        self.level.set_level(feed.level_dbfs if feed is not None and feed.running else None)
        self.status_label.setText(status_text(latest, self.history.latest_status))
        self._say_quiet()
        if self.history.version == self._drawn:
            return
        self._drawn = self.history.version
        rows = self.history.rows(TRACE_SPAN_S)
        self.traces.draw(rows, self.history.turns)
        self.plane.draw(rows)
        if latest is not None:
            self.bars.draw(latest["classes"])
        # a publisher's run that ended (--connect) leaves its last flag as history, as a run of the window's own
        # does; the final estimate and status came in one poll, and this frame had put the flag back
        ended = (self.history.latest_status or {}).get("ended") is True
        self.speech.set_speech(None if latest is None or not self.running or ended else latest["speech"])
        self.avd_label.setText(avd_text(latest, self._window_s))

    def _say_quiet(self) -> None:
        """--connect: a publisher silent for QUIET_S mid-run (killed, so no final status; or paused) is said, and
        its speech light goes out: the window had gone on showing it running, the light green, for good."""
        status = self.history.latest_status or {}
        if (self.connect_address and self.running and not self._quiet and self.history.latest is not None
                and status.get("ended") is not True and time.monotonic() - self._heard > QUIET_S):
            self._quiet = True
            self.statusBar().showMessage(f"nothing heard from the stream for {QUIET_S:g} s: its publisher was "
                                         "stopped without a final status (killed?), or is paused")
            self.speech.set_speech(None)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop the engine and wait for its thread, and close the CSV file, before the window goes."""
        self.redraw_timer.stop()
        self.stop()
        self.record_to(None)
        super().closeEvent(event)
