"""A running engine's stream (`emolive stream` publishes it): a SUB socket drained without blocking.

The socket is read on a GUI timer with NOBLOCK, so the GUI never waits on the network; while the
GUI is busy, messages wait in libzmq's bounded receive queue, and the publisher (non-blocking
XPUB) never waits on us at all. Every message is untrusted (`engine.schema.parse_message`): one
off the schema is counted and shown through `signals.rejected`, and the feed goes on.
"""
from __future__ import annotations

import time

import zmq
from PySide6.QtCore import QTimer

from emolive.engine.handshake import HandshakeWatch
from emolive.engine.schema import (ESTIMATE_TOPIC, STATUS_TOPIC, TURN_TOPIC, Rejections, SchemaError, parse_message,
                                   topic_prefix)
from emolive.engine.sinks import SinkError
from emolive.engine.sinks.zmq_publisher import validate_address
from emolive.gui.feed import FeedSignals
from emolive.gui.stream_choice import StreamChoice

POLL_MS = 20  # well inside the 50 ms redraw, so an estimate is drawn on the next frame
DRAIN_BUDGET_S = 0.01  # a flood of messages waits in libzmq's bounded queue instead of freezing the window


class ZmqFeed:
    """Subscribes to every stream's estimates and status at `address`, and passes on one stream's
    (gui.stream_choice): `stream_id`, or the first heard."""

    level_dbfs = None  # no audio reaches this process

    def __init__(self, address: str, *, stream_id: str | None = None, context: zmq.Context | None = None) -> None:
        self.address = address
        self.choice = StreamChoice(stream_id)
        self.signals = FeedSignals()
        self._context = context or zmq.Context.instance()
        self._socket: zmq.Socket | None = None
        self._watch: HandshakeWatch | None = None
        self.rejections = Rejections()
        self._timer = QTimer()
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._drain)

    def start(self) -> None:
        socket = self._context.socket(zmq.SUB)
        socket.setsockopt(zmq.LINGER, 0)
        for kind in (ESTIMATE_TOPIC, TURN_TOPIC, STATUS_TOPIC):
            socket.setsockopt(zmq.SUBSCRIBE, topic_prefix(kind))
        watch = HandshakeWatch(socket, self.address)
        try:
            socket.setsockopt(zmq.IPV6, validate_address(self.address, connect=True))
            socket.connect(self.address)
        except (SinkError, zmq.ZMQError) as exc:
            watch.close()
            socket.close()
            reason = exc.strerror if isinstance(exc, zmq.ZMQError) else str(exc)
            self.signals.error.emit(f"cannot connect to {self.address}: {reason}")
            self.signals.finished.emit(None)
            return
        self._socket, self._watch = socket, watch
        self._timer.start()
        self.signals.started.emit(f"ZeroMQ stream at {self.address}")

    def stop(self) -> None:
        if self._socket is None:
            return
        self._timer.stop()
        self._watch.close()
        self._socket.close()
        self._socket = None
        self.signals.finished.emit(None)

    @property
    def running(self) -> bool:
        return self._socket is not None

    def _drain(self) -> None:
        """What is queued now, for up to DRAIN_BUDGET_S; a message off the schema is counted and reported."""
        deadline = time.monotonic() + DRAIN_BUDGET_S
        if self._socket is not None and (note := self._watch.note()):
            self.signals.rejected.emit(note)
        while self._socket is not None and time.monotonic() < deadline:
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                kind, payload = parse_message(frames)
            except SchemaError as exc:
                self.signals.rejected.emit(self.rejections.add(exc))
                continue
            if not self.choice.accepts(kind, payload, time.monotonic()):
                if note := self.choice.passed_over(payload["stream"]):
                    self.signals.rejected.emit(note)
                continue
            signal = {ESTIMATE_TOPIC: self.signals.estimate, TURN_TOPIC: self.signals.turn}.get(kind, self.signals.status)
            signal.emit(payload)
