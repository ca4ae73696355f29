"""A running engine's stream (`emolive stream` publishes it): a SUB socket drained without blocking.

The socket is read on a GUI timer with NOBLOCK, so the GUI never waits on the network; while the
GUI is busy, messages wait in libzmq's bounded receive queue, and the publisher (non-blocking
XPUB) never waits on us at all.
"""
from __future__ import annotations

import json

import zmq
from PySide6.QtCore import QTimer

from emolive.engine.schema import ESTIMATE_TOPIC, STATUS_TOPIC
from emolive.gui.feed import FeedSignals

POLL_MS = 20  # well inside the 50 ms redraw, so an estimate is drawn on the next frame


class ZmqFeed:
    """Subscribes to every stream's estimates and status at `address`."""

    level_dbfs = None  # no audio reaches this process

    def __init__(self, address: str, *, context: zmq.Context | None = None) -> None:
        self.address = address
        self.signals = FeedSignals()
        self._context = context or zmq.Context.instance()
        self._socket: zmq.Socket | None = None
        self._timer = QTimer()
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._drain)

    def start(self) -> None:
        socket = self._context.socket(zmq.SUB)
        socket.setsockopt(zmq.LINGER, 0)
        for topic in (ESTIMATE_TOPIC, STATUS_TOPIC):
            socket.setsockopt(zmq.SUBSCRIBE, f"{topic}.".encode())
        try:
            socket.connect(self.address)
        except zmq.ZMQError as exc:
            socket.close()
            self.signals.error.emit(f"cannot connect to {self.address}: {exc.strerror}")
            self.signals.finished.emit(None)
            return
        self._socket = socket
        self._timer.start()
        self.signals.started.emit(f"ZeroMQ stream at {self.address}")

    def stop(self) -> None:
        if self._socket is None:
            return
        self._timer.stop()
        self._socket.close()
        self._socket = None
        self.signals.finished.emit(None)

    @property
    def running(self) -> bool:
        return self._socket is not None

    def _drain(self) -> None:
        """Everything queued now; a message that is not emolive's [topic, JSON] ends the feed with an error."""
        while self._socket is not None:
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                topic, body = frames
                payload = json.loads(body)
            except ValueError:
                self.signals.error.emit(f"{self.address} sent a message that is not emolive's [topic, JSON]")
                self.stop()
                return
            signal = self.signals.estimate if topic.startswith(f"{ESTIMATE_TOPIC}.".encode()) else self.signals.status
            signal.emit(payload)
