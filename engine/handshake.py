"""A subscriber's view of its connection: a peer that answers but does not speak ZeroMQ.

libzmq retries a failed handshake for ever without a word, so `emolive listen` (or `gui --connect`)
pointed at another output's port (the WebSocket's, say) waited in silence beside a running stream.
The socket's monitor sees each handshake fail; the reader says so once, and goes on listening (the
address may yet be a publisher's: one restarting in its place).
"""
from __future__ import annotations

import functools
import operator

import zmq
from zmq.utils.monitor import recv_monitor_message

HANDSHAKE_MS = 3000  # a peer silent this long after connecting is no publisher (libzmq's default: 30 s); a
# publisher answers in milliseconds, on a slow link within a second
FAILURES_SAID = 2  # handshakes failed in a row before it is said: a publisher closing as we connected fails one
FAILED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
          zmq.EVENT_HANDSHAKE_FAILED_AUTH)
WATCHED = functools.reduce(operator.or_, FAILED, zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED
                           | zmq.EVENT_HANDSHAKE_SUCCEEDED)


class HandshakeWatch:
    """Watches `socket`'s handshakes with the peer at `address` (before it connects), and gives them
    HANDSHAKE_MS: a WebSocket server waits in silence for a request, as a ZeroMQ peer for a greeting."""

    def __init__(self, socket: zmq.Socket, address: str) -> None:
        self.address = address
        self._socket = socket
        socket.setsockopt(zmq.HANDSHAKE_IVL, HANDSHAKE_MS)
        self._monitor = socket.get_monitor_socket(WATCHED)
        self.failing = False  # handshakes fail and have been said to, until one succeeds
        self._failures = 0  # handshakes failed since the last that succeeded
        self._shaking = False  # connected, no handshake yet: a disconnection now is a failed one (a PUSH
        # socket's peer, of a type a SUB cannot talk to, is dropped with no handshake event at all)

    def note(self) -> str | None:
        """A line to say: when handshakes fail FAILURES_SAID times in a row (once: a publisher closing as
        we connected drops one, and had been called no publisher), and when one succeeds after that (a
        publisher suspended for a while, or started late behind a forwarder, answers after all); None
        otherwise. Never blocks: it reads only the events already queued."""
        succeeded = False  # whether the latest handshake among the events queued succeeded
        while self._monitor.poll(0):
            event = recv_monitor_message(self._monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._failures, succeeded = 0, True
            elif event in FAILED:
                self._failures, succeeded = self._failures + 1, False
            elif event == zmq.EVENT_DISCONNECTED and self._shaking:  # dropped with no handshake event: a ZeroMQ
                self._failures, succeeded = FAILURES_SAID, False  # socket of another kind, which libzmq never retries
            self._shaking = event == zmq.EVENT_CONNECTED
        if succeeded and self.failing:
            self.failing = False
            return f"{self.address} now answers as a ZeroMQ publisher"
        if self._failures >= FAILURES_SAID and not self.failing:
            self.failing = True
            return (f"{self.address} accepts connections but gives no ZeroMQ publisher's handshake (within "
                    f"{HANDSHAKE_MS / 1000:g} s): if it is another output's port (--websocket) or another ZeroMQ "
                    "socket, connect to the address `emolive stream --publish` binds; still trying")
        return None

    def close(self) -> None:
        """Stop watching; before the socket closes."""
        self._socket.disable_monitor()
        self._monitor.close(linger=0)
