"""Qt signals from the engine's thread leave Python's singletons alone.

PySide6 6.12.0's `Signal.emit` returned True without owning a reference, so every emit took one
from True: on Python 3.11 (where True and None are not immortal) `emolive gui` aborted with "Fatal
Python error: deallocating True or False" (or None) after a few thousand estimates, half an hour
of microphone or a 30-minute file. requirements.txt pins a PySide6 without that bug; this holds
any version to it, counting references rather than waiting for the crash.
"""
from __future__ import annotations

import sys
import threading

from emolive.gui.feed import FeedSignals

EMITS = 500  # 500 lost references would show as -500; other threads' noise here is a handful


def singleton_counts() -> tuple[int, int, int]:
    return sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)


def test_emitting_from_the_engine_thread_keeps_none_true_and_false_counted(qtbot):
    signals = FeedSignals()
    received = []
    signals.estimate.connect(received.append)
    signals.finished.connect(received.append)
    payload = {"activation": 4.0, "speech": True, "error": None}

    def engine_thread() -> None:
        for _ in range(EMITS):
            signals.estimate.emit(payload)
            signals.finished.emit(None)

    before = singleton_counts()
    worker = threading.Thread(target=engine_thread)
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: len(received) == 2 * EMITS, timeout=10_000)
    received.clear()
    drift = [after - was for after, was in zip(singleton_counts(), before)]
    assert all(abs(d) < EMITS // 10 for d in drift), f"None/True/False references lost per run: {drift}"
