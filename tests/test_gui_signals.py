"""Qt signals from the engine's thread leave Python's singletons alone.

PySide6 6.12.0's `Signal.emit` returned True without owning a reference, so every emit took one
from True: on Python 3.11 (where True and None are not immortal) `emolive gui` aborted with "Fatal
Python error: deallocating True or False" (or None) after a few thousand estimates, half an hour
of microphone or a 30-minute file. requirements.txt pins a PySide6 without that bug; this holds
any version to it, counting references rather than waiting for the crash, in a fresh interpreter
(threads left by other tests would move the counts).
"""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

EMITS = 500  # 6.12.0 loses 2 references to True per iteration (two emits): -1000 here
COUNT = """
import os, sys, threading
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QCoreApplication
from emolive.gui.feed import FeedSignals
app = QCoreApplication([])
signals, received = FeedSignals(), []
signals.estimate.connect(received.append)
signals.finished.connect(received.append)
payload = {"activation": 4.0, "speech": True, "error": None}

def engine_thread():
    for _ in range(EMITS):
        signals.estimate.emit(payload)
        signals.finished.emit(None)

before = [sys.getrefcount(x) for x in (None, True, False)]
worker = threading.Thread(target=engine_thread)
worker.start()
worker.join()
while len(received) < 2 * EMITS:
    app.processEvents()
received.clear()
print(*[sys.getrefcount(x) - b for x, b in zip((None, True, False), before)])
"""


def test_emitting_from_the_engine_thread_keeps_none_true_and_false_counted():
    run = subprocess.run([sys.executable, "-c", COUNT.replace("EMITS", str(EMITS))], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    drift = [int(d) for d in run.stdout.split()]
    assert all(abs(d) < EMITS // 10 for d in drift), f"None/True/False references lost: {drift}"
