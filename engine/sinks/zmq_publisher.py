"""ZeroMQ PUB output: the engine's main interface to other programs.

A bounded send queue (SNDHWM) and non-blocking sends mean a slow or dead subscriber costs the
engine neither memory nor time: libzmq drops that subscriber's messages once its queue is full.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

import zmq

from engine.schema import ESTIMATE_TOPIC, STATUS_TOPIC, to_json, topic
from engine.sinks.base import Sink, SinkError

DEFAULT_ADDRESS = "tcp://127.0.0.1:5556"
DEFAULT_SNDHWM = 100  # 50 s of estimates at a 0.5 s hop: plenty for a live reader, bounded for a dead one


def is_local(address: str) -> bool:
    """True when only this machine can connect: ipc/inproc, or tcp on a loopback address."""
    transport, _, rest = address.partition("://")
    if transport in ("ipc", "inproc"):
        return True
    if transport != "tcp":
        return False
    host = rest.rpartition(":")[0].strip("[]")
    if host in ("localhost", "lo"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # '*', an interface name or a host name: reachable from elsewhere
        return False


class ZmqPublisher(Sink):
    """Publish [topic, JSON] multipart messages: `avd.<stream>` for estimates, `status.<stream>` for status."""

    def __init__(self, address: str = DEFAULT_ADDRESS, *, allow_remote: bool = False, sndhwm: int = DEFAULT_SNDHWM,
                 context: zmq.Context | None = None) -> None:
        """Bind `address`; a non-loopback address needs `allow_remote=True`, so nothing is exposed by accident."""
        if not allow_remote and not is_local(address):
            raise SinkError(f"refusing to publish on {address}: other machines could connect; "
                            "allow it explicitly (--allow-remote) or use tcp://127.0.0.1:PORT")
        self._socket = (context or zmq.Context.instance()).socket(zmq.PUB)
        self._socket.setsockopt(zmq.SNDHWM, sndhwm)
        self._socket.setsockopt(zmq.LINGER, 0)  # on close, unsent messages are discarded, never waited for
        try:
            self._socket.bind(address)
        except zmq.ZMQError as exc:
            self._socket.close()
            if exc.errno == zmq.EADDRINUSE:
                raise SinkError(f"cannot publish on {address}: address already in use "
                                "(another emolive stream?); choose another address") from None
            raise SinkError(f"cannot publish on {address}: {exc.strerror}") from None
        self.address: str = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)  # the real port when bound to ':*'
        self.dropped = 0  # sends libzmq refused locally; per-subscriber drops at the HWM are silent in libzmq

    def emit(self, estimate: Mapping[str, Any]) -> None:
        self._send(topic(ESTIMATE_TOPIC, estimate), estimate)

    def status(self, status: Mapping[str, Any]) -> None:
        self._send(topic(STATUS_TOPIC, status), status)

    def _send(self, topic_name: str, payload: Mapping[str, Any]) -> None:
        try:
            self._socket.send_multipart([topic_name.encode(), to_json(payload).encode()], flags=zmq.NOBLOCK)
        except zmq.Again:
            self.dropped += 1

    def close(self) -> None:
        self._socket.close(linger=0)
