"""Cyclic garbage collected on the GUI thread only, while the GUI runs.

Why: Python's cyclic collector runs in whichever thread happens to allocate when a generation's
threshold is crossed — in the GUI that is often the engine's worker thread, which allocates a
lot (loading a bundle, numpy blocks). When the garbage holds a Qt object made on the GUI thread
(a closed window, a finished feed's signals), Qt then destroys it on the wrong thread and the
process crashes: CI once died with a segmentation fault "Garbage-collecting" inside the engine
thread's `read_bundle`. So while the application runs, automatic collection is off and a timer
on the GUI thread collects whatever generation the automatic collector would have (the scheme of
pyqtgraph's `GarbageCollector`). Worker threads then never finalise anything that lives in a cycle.
"""
from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QTimer

COLLECT_EVERY_MS = 1000  # garbage in cycles waits at most this long; reference-counted objects go at once
OBJECT_NAME = "emolive-gui-thread-gc"


def collect_due() -> int:
    """Collects the oldest generation whose allocation count has passed its threshold, as the
    automatic collector would; returns the number of unreachable objects found (0 when none was due)."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    for generation in (2, 1, 0):
        if counts[generation] > thresholds[generation]:
            return gc.collect(generation)
    return 0


class GuiThreadCollector(QObject):
    """Owned by the application: turns automatic collection off, collects on its own (GUI) thread's
    timer, and hands collection back to Python when the application quits."""

    def __init__(self, app: QCoreApplication) -> None:
        super().__init__(app)
        self.setObjectName(OBJECT_NAME)
        self._was_enabled = gc.isenabled()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.setInterval(COLLECT_EVERY_MS)
        self.timer.timeout.connect(collect_due)
        self.timer.start()
        app.aboutToQuit.connect(self.restore)

    def restore(self) -> None:
        self.timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()


def collect_on_gui_thread() -> GuiThreadCollector:
    """The application's collector, made on first call (from the GUI thread, with a QApplication)."""
    app = QCoreApplication.instance()
    if app is None:
        raise RuntimeError("collect_on_gui_thread needs a QApplication")
    collector = app.findChild(GuiThreadCollector, OBJECT_NAME)
    return collector if collector is not None else GuiThreadCollector(app)
