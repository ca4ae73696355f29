"""Open Sound Control over UDP, for Max/MSP, Pure Data, TouchDesigner, SuperCollider and the like.

Per estimate, three messages (the stream id in the address, so one patch can tell streams apart):
    /emolive/<stream>/avd     f f f   activation, valence, dominance (1-7)
    /emolive/<stream>/class   s f     the most probable class and its probability (not sent without classes)
    /emolive/<stream>/speech  i       1 when the window is speech (engine.vad), else 0
and per speech turn, when it ends: /emolive/<stream>/turn f f f f f (start, end, A, V, D).
UDP never waits for a reader, so a patch that is closed or slow costs the engine nothing.
python-osc is an optional extra (`pip install emolive[osc]`), imported only when this sink is used.
"""
from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

from emolive.engine.defaults import OSC_TARGET
from emolive.engine.schema import DIMENSIONS
from emolive.engine.sinks.base import Sink, SinkError
from emolive.engine.sinks.endpoint import parse_endpoint



class OscSink(Sink):
    """Send each estimate to one OSC receiver at HOST:PORT."""

    def __init__(self, target: str = OSC_TARGET, *, allow_remote: bool = False) -> None:
        try:
            from pythonosc.osc_message_builder import build_msg
        except ImportError:
            raise SinkError("the OSC output needs python-osc; install it with `pip install emolive[osc]`") from None
        host, port = parse_endpoint(target, "--osc", allow_remote=allow_remote)
        if port == 0:
            raise SinkError(f"--osc {target}: give the receiver's port (OSC sends, it does not listen)")
        try:
            family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except socket.gaierror as exc:
            raise SinkError(f"--osc {target}: {exc.strerror}") from None
        self._socket = socket.socket(family, kind, proto)
        self._socket.setblocking(False)  # a full send buffer drops a datagram; it never waits
        if family == socket.AF_INET:  # a broadcast target (Max, Pd and TouchDesigner rigs use them) needs leave to
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)  # send: EACCES at the first estimate
        self._address, self._build = address, build_msg
        self.target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # as it is written
        self.dropped = 0  # datagrams the kernel would not queue

    def emit(self, estimate: Mapping[str, Any]) -> None:
        prefix = f"/emolive/{estimate['stream']}"
        self._send(f"{prefix}/avd", [float(estimate[name]) for name in DIMENSIONS])
        classes = estimate["classes"]
        if classes:
            top = max(classes, key=classes.get)
            self._send(f"{prefix}/class", [top, float(classes[top])])
        self._send(f"{prefix}/speech", int(estimate["speech"]))

    def turn(self, turn: Mapping[str, Any]) -> None:
        if turn["kind"] == "turn":
            self._send(f"/emolive/{turn['stream']}/turn",
                       [float(turn["start"]), float(turn["end"]), *(float(turn[name]) for name in DIMENSIONS)])

    def _send(self, address: str, values: Any) -> None:
        try:
            self._socket.sendto(self._build(address, values).dgram, self._address)
        except BlockingIOError:
            self.dropped += 1
        except ConnectionRefusedError:
            pass  # an ICMP "port unreachable" from an earlier datagram: nobody listens yet, as UDP allows
        except OSError as exc:  # e.g. no route to the host: the receiver is the user's to fix
            raise SinkError(f"OSC to {self.target}: {exc.strerror or exc}") from None

    def close(self) -> None:
        self._socket.close()
