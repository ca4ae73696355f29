"""HOST:PORT for the UDP and TCP outputs (OSC, WebSocket): parsed once, loopback unless allowed otherwise.

The same rule as the ZeroMQ publisher (`zmq_publisher.loopback_host`): nothing is reachable from other
machines by accident; `--allow-remote` says it is meant.
"""
from __future__ import annotations

import socket

from emolive.engine.sinks.base import SinkError
from emolive.engine.sinks.zmq_publisher import loopback_host


def parse_endpoint(text: str, what: str, *, allow_remote: bool = False) -> tuple[str, int]:
    """'127.0.0.1:9000', '[::1]:9000' or 'localhost:9000' as (host, port); port 0 lets the system choose.
    Unless `allow_remote`, the host comes back as the loopback address it resolves to (checked,
    then bound: a name is never trusted)."""
    host, separator, port = text.rpartition(":")
    host = host.strip("[]")
    # ASCII digits only: str.isdigit takes '²' (int() then raised) and '٩٠٠٠' (taken as port 9000)
    if not separator or not host or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise SinkError(f"{what} {text!r}: give HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:9000")
    if not allow_remote:
        checked = loopback_host(host)
        if checked is None and not resolves(host):  # --allow-remote, the advice below, would not help it
            raise SinkError(f"{what} {text!r}: host {host!r} is no address and no name this machine resolves")
        if checked is None:
            raise SinkError(f"refusing {what} {text}: other machines could reach it; allow it explicitly "
                            "(--allow-remote) or use 127.0.0.1:PORT")
        host = checked
    return host, int(port)


def resolves(host: str) -> bool:
    """Whether `host` is an address or a name this machine resolves."""
    try:
        return bool(socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP))
    except (OSError, UnicodeError):
        return False
