"""ZeroMQ PUB output: the engine's main interface to other programs.

Live, a bounded send queue (SNDHWM) and non-blocking sends mean a slow or dead subscriber costs the
engine neither memory nor time: libzmq drops that subscriber's messages once its queue is full (a
gap in `seq` tells it). A recording at hand is read faster than a subscriber may read, and nothing
there is gained by dropping: the publisher then waits for a slow subscriber (`keep_up_s`), so it
gets every message and the final status; one that stops reading for that long is given up on, with
a warning (libzmq waits for every subscriber or none, so from then on each is lossy, as live; the
final status is waited for once more).

The socket is an XPUB, which sends exactly like a PUB but also reports subscriptions: that is the
one reliable cure for PUB/SUB's "slow joiner" (messages sent before a subscription reaches the
publisher are dropped), used by `wait_for_subscriber` (`emolive stream --wait-subscriber`).
"""
from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import socket
import stat
import time
from collections.abc import Mapping
from typing import Any

import zmq

from emolive.engine.defaults import DEFAULT_ADDRESS
from emolive.engine.schema import ESTIMATE_TOPIC, STATUS_TOPIC, TURN_TOPIC, to_json, topic
from emolive.engine.sinks.base import Sink, SinkError

log = logging.getLogger(__name__)

DEFAULT_SNDHWM = 100  # 50 s of estimates at a 0.5 s hop: plenty for a live reader, bounded for a dead one
CLOSE_LINGER_MS = 250  # live, on close, queued messages get this long to leave: a dead subscriber delays
# exit by a quarter second at most
KEEP_UP_S = 5.0  # a recording at hand waits this long for a subscriber whose queue is full (`emolive stream FILE`)
RETRY_S = (0.001, 0.05)  # first and longest pause between tries of a send a full queue refused
SETTLE_S = 0.3  # --wait-subscriber: how long the wait goes on after a reader for the next (3 reconnect intervals)
ADDRESS_HELP = "use tcp://HOST:PORT (tcp://127.0.0.1:5556, tcp://[::1]:5556; PORT * for any free one), ipc://PATH"
CONNECT_HELP = "use the publisher's tcp://HOST:PORT (tcp://127.0.0.1:5556, tcp://[::1]:5556) or ipc://PATH"
_TCP = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^\[\]:/]+):(?P<port>\*|[0-9]{1,5})")


def validate_address(address: str, connect: bool = False) -> bool:
    """Raise SinkError unless `address` is a ZeroMQ endpoint emolive can bind (or `connect` to); True for IPv6.

    libzmq itself takes `tcp://127.0.0.1:99999` as port 34463 (the number modulo 65536) and says
    only "Invalid argument" for a malformed address, so both are checked here, with a fix. inproc://
    is refused: it reaches only the process itself, so a stream published to no one and `listen`
    waited for ever. Port * (any free one) only binds: a subscriber told to try it got "Invalid argument".
    """
    transport, separator, rest = address.partition("://")
    if transport == "ipc" and separator and rest:
        return False
    match = _TCP.fullmatch(rest) if transport == "tcp" and separator else None
    if match is None:
        raise SinkError(f"malformed address {address!r}: {CONNECT_HELP if connect else ADDRESS_HELP}")
    port = match["port"]
    if connect and match["host"] == "*":
        raise SinkError(f"cannot connect to {address}: host * is for a publisher, to bind every interface; give the "
                        "publisher's host (tcp://127.0.0.1:PORT on this machine)")
    if connect and port == "*":
        raise SinkError(f"cannot connect to {address}: port * picks a free port for a publisher; give the port it "
                        "printed (\"publishing on tcp://…\")")
    if port != "*" and int(port) > 65535:
        raise SinkError(f"port {port} in {address!r} is out of range: use 1-65535, or * for any free port")
    return match["host"].startswith("[")


def check_resolves(address: str) -> None:
    """Raise SinkError where a tcp address names a host that does not resolve: libzmq connects lazily
    and would retry it forever without a word (`emolive listen --connect tcp://typo:5556`)."""
    match = _TCP.fullmatch(address.partition("://")[2]) if address.startswith("tcp://") else None
    host = match["host"].strip("[]") if match else "*"
    if host == "*":
        return
    try:
        socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise SinkError(f"cannot connect to {address}: host {host!r} does not resolve "
                        f"({getattr(exc, 'strerror', None) or exc})") from None


def loopback_host(host: str) -> str | None:
    """The loopback address `host` stands for, judged by what it resolves to, never by its name
    (a hosts file may map "localhost" to any address): an IP literal that is loopback, or a name
    every address of which is loopback (its first); None for anything else ('*', an interface
    name, another host)."""
    try:
        return host if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        pass
    try:
        found = [info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)]
    except (OSError, UnicodeError):  # gaierror is an OSError
        return None
    try:
        loopback = bool(found) and all(ipaddress.ip_address(a.partition("%")[0]).is_loopback for a in found)
    except ValueError:
        return None
    return found[0] if loopback else None


def local_address(address: str) -> str | None:
    """`address` with its host replaced by the loopback address it resolves to, when only this
    machine can connect (ipc as given); None when others could."""
    transport, _, rest = address.partition("://")
    if transport == "ipc":
        return address
    if transport != "tcp":
        return None
    host, _, port = rest.rpartition(":")
    literal = loopback_host(host.strip("[]"))
    if literal is None:
        return None
    return f"tcp://[{literal}]:{port}" if ":" in literal else f"tcp://{literal}:{port}"


def is_local(address: str) -> bool:
    """True when only this machine can connect: ipc, or tcp on what resolves to loopback."""
    return local_address(address) is not None


def check_ipc_path(address: str) -> None:
    """Raise SinkError where an ipc:// path holds something libzmq's bind would destroy: it unlinks
    whatever is at the path first, so a typo replaced a file (the audio being streamed, once) with a
    socket, and a second stream on a path in use took it from the first without a word. A socket
    nothing listens on (a stream that was killed) is taken over, as libzmq does; an abstract name
    (ipc://@name) has no file."""
    path = address.partition("://")[2]
    if path.startswith("@"):
        return
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise SinkError(f"cannot publish on {address}: {exc.strerror}") from None
    if not stat.S_ISSOCK(info.st_mode):
        raise SinkError(f"cannot publish on {address}: {path} exists and is not a socket (binding would delete it); "
                        "choose another path")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:  # refused: nothing listens there any more
            return
    raise SinkError(f"cannot publish on {address}: address already in use (another emolive stream?); "
                    "choose another address")


class ZmqPublisher(Sink):
    """Publish [topic, JSON] multipart messages: `avd.<stream>` for estimates, `status.<stream>` for status."""

    def __init__(self, address: str = DEFAULT_ADDRESS, *, allow_remote: bool = False, sndhwm: int = DEFAULT_SNDHWM,
                 context: zmq.Context | None = None, keep_up_s: float | None = None) -> None:
        """Bind `address`; a non-loopback address needs `allow_remote=True`, so nothing is exposed by
        accident. A host name is bound as the loopback address it was checked to resolve to.
        `keep_up_s` (a recording at hand): a message a subscriber's full queue refuses is retried for
        up to this long (XPUB_NODROP), and queued messages get as long to leave on close; after that
        long without room the run stops waiting (the rest is dropped for whoever cannot take it)."""
        validate_address(address)
        if not allow_remote:
            checked = local_address(address)
            if checked is None:
                raise SinkError(f"refusing to publish on {address}: other machines could connect; "
                                "allow it explicitly (--allow-remote) or use tcp://127.0.0.1:PORT")
            address = checked
        ipv6 = validate_address(address)
        if address.startswith("ipc://"):
            check_ipc_path(address)
        self._socket = (context or zmq.Context.instance()).socket(zmq.XPUB)
        self._socket.setsockopt(zmq.IPV6, ipv6)  # libzmq binds an IPv6 address only with this option
        self._socket.setsockopt(zmq.SNDHWM, sndhwm)
        self._socket.setsockopt(zmq.XPUB_VERBOSE, 1)  # each reader's subscriptions, for wait_for_subscriber
        self._socket.setsockopt(zmq.LINGER, CLOSE_LINGER_MS if keep_up_s is None else round(1000 * keep_up_s))
        self._keep_up_s = self._keep_up_limit = keep_up_s
        self._gave_up = False  # said once
        if keep_up_s is not None:
            self._socket.setsockopt(zmq.XPUB_NODROP, 1)  # a full queue refuses the send (EAGAIN), for us to wait
        try:
            self._socket.bind(address)
        except zmq.ZMQError as exc:
            self._socket.close()
            if exc.errno == zmq.EADDRINUSE:
                raise SinkError(f"cannot publish on {address}: address already in use "
                                "(another emolive stream?); choose another address") from None
            raise SinkError(f"cannot publish on {address}: {exc.strerror}") from None
        self.address: str = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)  # the real port when bound to ':*'
        self._socket_file = _socket_file(self.address)  # removed on close if still the one bound here
        self.dropped = 0  # sends libzmq refused locally; live, its drops for a subscriber at the HWM are silent

    def wait_for_subscriber(self, timeout_s: float) -> bool:
        """Block until some subscriber has subscribed (True) or `timeout_s` passes (False); then on, within
        `timeout_s`, while more keep subscribing, until SETTLE_S passes without one. Readers waiting as the
        publisher binds come within libzmq's reconnect interval of each other, and a short file run had
        ended before a second one's subscription: it heard nothing, not even the final status."""
        deadline = time.monotonic() + timeout_s
        if not self._socket.poll(round(1000 * timeout_s), zmq.POLLIN):
            return False
        while self._socket.poll(round(1000 * min(SETTLE_S, max(0.0, deadline - time.monotonic()))), zmq.POLLIN):
            self._socket.recv()  # a subscription (XPUB_VERBOSE: every reader's, not only a topic's first)
        return True

    def emit(self, estimate: Mapping[str, Any]) -> None:
        self._send(topic(ESTIMATE_TOPIC, estimate), estimate)

    def turn(self, turn: Mapping[str, Any]) -> None:
        self._send(topic(TURN_TOPIC, turn), turn)

    def status(self, status: Mapping[str, Any]) -> None:
        if status.get("ended") is True and self._keep_up_limit is not None and self._keep_up_s is None:
            self._wait_again()  # a slow reader gets the final status, though the run stopped waiting for a stalled one
        self._send(topic(STATUS_TOPIC, status), status)
        self._discard_subscriptions()

    def _discard_subscriptions(self) -> None:
        """Read away the subscription notices XPUB queues for us, so subscribers coming and going
        for days cannot grow that queue; once a second (with the status) is plenty."""
        while self._socket.poll(0, zmq.POLLIN):
            self._socket.recv()

    def _send(self, topic_name: str, payload: Mapping[str, Any]) -> None:
        frames = [topic_name.encode(), to_json(payload).encode()]
        deadline, pause = None, RETRY_S[0]
        while True:
            try:
                self._socket.send_multipart(frames, flags=zmq.NOBLOCK)
                return
            except zmq.Again:
                if self._keep_up_s is None:
                    self.dropped += 1
                    return
            now = time.monotonic()  # a subscriber's queue is full: wait for it to read (XPUB has no POLLOUT for it)
            deadline = deadline or now + self._keep_up_s
            if now >= deadline:
                self._give_up()  # and the message goes to the others, as live
                continue
            time.sleep(min(pause, deadline - now))
            pause = min(2 * pause, RETRY_S[1])

    def _give_up(self) -> None:
        """A subscriber has read nothing for `keep_up_s`: from here on the run goes at its own pace, and
        libzmq drops what a subscriber cannot take, as live. libzmq's one setting is the socket's, so this
        holds for every subscriber: one reading slower than the run then misses messages too (said);
        the final status is waited for again (`status`)."""
        if not self._gave_up:
            self._gave_up = True
            log.warning("ZeroMQ: a subscriber read nothing for %g s; no longer waiting for subscribers (from here "
                        "on each misses what it cannot take as it comes; the final status is waited for)",
                        self._keep_up_s)
        self._keep_up_s = None
        self._socket.setsockopt(zmq.XPUB_NODROP, 0)
        self._socket.setsockopt(zmq.LINGER, CLOSE_LINGER_MS)

    def _wait_again(self) -> None:
        """Wait for full queues as before `_give_up`, once more: for the final status, and for the queued
        messages on close (a stalled subscriber delays the exit by `keep_up_s` twice more at most).

        The pause comes first because a refused send cannot measure it: libzmq passes over every
        subscriber whose queue was full at a lossy send until it has read half of it again, so the
        final status "went" to no one at once, and a reader still taking in its backlog never got it
        (1 run in 5 of tests/test_sinks.py). In the pause such a reader makes room, and the send after it
        (which takes in libzmq's pending notices of room) includes it."""
        time.sleep(self._keep_up_limit)
        self._keep_up_s = self._keep_up_limit
        self._socket.setsockopt(zmq.XPUB_NODROP, 1)
        self._socket.setsockopt(zmq.LINGER, round(1000 * self._keep_up_limit))

    def close(self) -> None:
        self._socket.close()
        # libzmq removes its socket file only when the context ends, which a process's shared one never does:
        # each run left one. Only the file bound here goes: one a later stream bound at the path is its own.
        if self._socket_file is not None and _socket_file(self.address) == self._socket_file:
            with contextlib.suppress(OSError):
                os.unlink(self._socket_file[0])


def _socket_file(address: str) -> tuple[str, int, int] | None:
    """(path, device, inode) of the socket file an ipc:// address is bound at; None for tcp, an abstract
    name or nothing there."""
    path = address.partition("ipc://")[2]
    if not path or path.startswith("@"):
        return None
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return (path, info.st_dev, info.st_ino) if stat.S_ISSOCK(info.st_mode) else None
