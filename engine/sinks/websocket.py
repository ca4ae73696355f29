"""WebSocket output: the ZeroMQ messages for browsers and any program with a WebSocket client.

Each text message is one JSON object `{"topic": "avd.<stream>", "message": {...}}`: the topic
and the payload exactly as the ZeroMQ publisher sends them (`avd.`, `turn.`, `status.`; the
JSON Schema in engine/data/messages.schema.json describes both).

The server runs on its own thread and asyncio loop. The engine hands each message over with
`call_soon_threadsafe` and never waits: every client has a bounded queue, and a client too slow
to keep up (or one that stopped reading) loses the messages that do not fit, counted in
`dropped`; a dead client is dropped by the keep-alive ping. websockets is an optional extra
(`pip install emolive[websocket]`), imported only when this sink is used.

Browsers let any web page open a WebSocket to 127.0.0.1, so loopback alone does not keep the
estimates of a voice private: a connection whose Origin header names a page is accepted only from
pages this machine serves (http(s)://localhost, 127.x.x.x, [::1], any port) or an origin given with
`--websocket-origin`. Programs send no Origin and are always served. What a client sends is read
and dropped: left unread it filled the library's queue, the keep-alive's answers went unread with
it, and the client was cut off 40 s later.

A client's handler lives exactly as long as its connection (a sender task drains its queue beside
it), so `close()` is bounded: the messages queued before it get CLOSE_LINGER_S to leave, then each
connection gets CLOSE_LINGER_S to finish the closing handshake, and the server's thread ends. A
handler that waited on its queue alone never returned, and every close took the 5 s join timeout.
"""
from __future__ import annotations

import asyncio
import errno
import json
import logging
import math
import re
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

from emolive.engine.defaults import WEBSOCKET_ADDRESS
from emolive.engine.schema import ESTIMATE_TOPIC, STATUS_TOPIC, TURN_TOPIC, to_json, topic
from emolive.engine.sinks.base import Sink, SinkError
from emolive.engine.sinks.endpoint import parse_endpoint

CLIENT_QUEUE = 100  # messages per client: 50 s of estimates at a 0.5 s hop, like the ZeroMQ high-water mark
START_TIMEOUT_S = 10.0
WAIT_STEP_S = 0.01  # how often `wait_for_subscriber` looks for a client
# on close, queued messages get this long to leave (a file's last estimates), like ZeroMQ's; then each client
# gets as long to answer the closing handshake (well under 1 ms on loopback)
CLOSE_LINGER_S = 0.25
STOP_TIMEOUT_S = 5.0  # a safety bound on close(), which returns within 2 * CLOSE_LINGER_S
# the Origin of a page this machine serves; a page's scheme and host are case-insensitive, so is the match
LOCAL_PAGES = re.compile(r"https?://(localhost|127(\.[0-9]{1,3}){3}|\[::1\])(:[0-9]{1,5})?", re.IGNORECASE)
log = logging.getLogger(__name__)


class AcceptFailures(logging.Filter):
    """asyncio's record of a refused accept (the process out of file descriptors: a flood of idle
    connections) as one line every REPEAT_S, not its traceback ~1,400 times a second (77 MB of stderr
    in 20 s)."""

    REPEAT_S = 10.0

    def __init__(self) -> None:
        super().__init__()
        self._last = -math.inf

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("socket.accept() out of system resource"):
            return True
        now = time.monotonic()
        if now - self._last < self.REPEAT_S:
            return False
        self._last = now
        reason = record.exc_info[1] if record.exc_info else None
        record.msg, record.args, record.exc_info, record.exc_text = (
            "WebSocket: cannot accept a connection (%s); new clients wait until descriptors are free", (reason,),
            None, None)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class WebSocketSink(Sink):
    """Serve every connected client the estimates, turns and statuses as they are made."""

    def __init__(self, address: str = WEBSOCKET_ADDRESS, *, allow_remote: bool = False,
                 queue_size: int = CLIENT_QUEUE, origins: tuple[str, ...] = ()) -> None:
        """`origins`: web pages' origins served besides this machine's own (`--websocket-origin`)."""
        try:
            from websockets.asyncio.server import ServerConnection, serve
            from websockets.protocol import State
        except ImportError:
            raise SinkError("the WebSocket output needs websockets; install it with "
                            "`pip install emolive[websocket]`") from None
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()  # every one accepted, opening or open
        self._opening = State.CONNECTING
        connections = self._connections

        class Tracked(ServerConnection):
            """A connection the close can find while its opening handshake is still awaited."""

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                super().connection_made(transport)
                connections.add(self)

        host, port = parse_endpoint(address, "--websocket", allow_remote=allow_remote)
        self._queue_size, self._clients = queue_size, set()
        self.dropped = 0  # messages not delivered to a client whose queue was full
        self._loop = asyncio.new_event_loop()
        self._accept_failures = AcceptFailures()
        logging.getLogger("asyncio").addFilter(self._accept_failures)
        self._ready = threading.Event()
        self._failure: OSError | None = None
        # None: no Origin header, a program rather than a page; a page's scheme and host are
        # case-insensitive (browsers send them in lower case), so is the match of a given origin
        accepted = [None, LOCAL_PAGES, *(re.compile(re.escape(origin), re.IGNORECASE) for origin in origins)]
        self._thread = threading.Thread(target=self._loop.run_until_complete,
                                        args=(self._serve(serve, host, port, accepted, Tracked),),
                                        name="emolive-websocket", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise SinkError(f"the WebSocket server on {address} did not start within {START_TIMEOUT_S:g} s")
        if self._failure is not None:
            self._thread.join(timeout=STOP_TIMEOUT_S)
            self._close_loop()
            raise SinkError(bind_failure(address, self._failure)) from None

    @property
    def clients(self) -> int:
        return len(self._clients)

    def wait_for_subscriber(self, timeout_s: float) -> bool:
        """Until a client has connected (its handshake done), looking every WAIT_STEP_S."""
        deadline = time.monotonic() + timeout_s
        while not self._clients:
            if time.monotonic() >= deadline:
                return False
            time.sleep(WAIT_STEP_S)
        return True

    async def _serve(self, serve: Any, host: str, port: int, origins: list[Any], connection_type: type) -> None:
        try:
            server = await serve(self._client, host, port, close_timeout=CLOSE_LINGER_S, origins=origins,
                                 create_connection=connection_type)
        except OSError as exc:
            self._failure = exc
            self._ready.set()
            return
        self._server = server
        bound = server.sockets[0].getsockname()
        self.address = f"{'[' + bound[0] + ']' if ':' in bound[0] else bound[0]}:{bound[1]}"
        self._ready.set()
        await server.wait_closed()

    async def _client(self, connection: Any) -> None:
        """Serve one client until its connection closes (the client left, or close() closed it), reading
        and dropping what it sends; returning then is what lets the server's close finish."""
        from websockets.exceptions import ConnectionClosed

        messages: asyncio.Queue[str] = asyncio.Queue(self._queue_size)
        self._clients.add(messages)
        sender = asyncio.create_task(self._send(connection, messages))
        try:
            async for _ in connection:
                pass
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(messages)
            sender.cancel()
            await asyncio.wait([sender])

    @staticmethod
    async def _send(connection: Any, messages: asyncio.Queue[str]) -> None:
        """Send a client's messages in order; each is marked done once sent, so close() can wait for them."""
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                await connection.send(await messages.get())
                messages.task_done()
        except ConnectionClosed:
            pass

    def _offer(self, text: str) -> None:
        """On the server's loop: queue `text` for every client, counting those that have no room."""
        for messages in self._clients:
            try:
                messages.put_nowait(text)
            except asyncio.QueueFull:
                self.dropped += 1

    def _publish(self, kind: str, payload: Mapping[str, Any]) -> None:
        text = '{"topic":' + json.dumps(topic(kind, payload)) + ',"message":' + to_json(payload) + "}"
        self._loop.call_soon_threadsafe(self._offer, text)

    def emit(self, estimate: Mapping[str, Any]) -> None:
        self._publish(ESTIMATE_TOPIC, estimate)

    def turn(self, turn: Mapping[str, Any]) -> None:
        self._publish(TURN_TOPIC, turn)

    def status(self, status: Mapping[str, Any]) -> None:
        self._publish(STATUS_TOPIC, status)

    async def _linger(self) -> None:
        """Wait up to CLOSE_LINGER_S for every message queued so far to be sent, then close the server
        (and with it every connection)."""
        try:
            await asyncio.wait_for(asyncio.gather(*(messages.join() for messages in self._clients)), CLOSE_LINGER_S)
        except TimeoutError:  # a client that did not keep up loses what it had not taken
            pass
        self._server.close()
        # a connection still in its opening handshake (a port scan, a browser's preconnect) held the close
        # for the handshake's 10 s, past close()'s bound: the run exited 5 s late, the thread left running
        for connection in list(self._connections):
            if connection.protocol.state is self._opening:
                connection.transport.abort()

    def _close_loop(self) -> None:
        """The server's event loop and its own sockets, once its thread has ended (`python -X dev` said
        "unclosed event loop" at every exit)."""
        if not self._thread.is_alive():
            self._loop.close()

    def close(self) -> None:
        if self._thread.is_alive() and hasattr(self, "_server"):
            asyncio.run_coroutine_threadsafe(self._linger(), self._loop).result(timeout=STOP_TIMEOUT_S)
            self._thread.join(timeout=STOP_TIMEOUT_S)
        self._close_loop()
        logging.getLogger("asyncio").removeFilter(self._accept_failures)
        if self.dropped:
            log.warning("WebSocket: %d messages dropped for clients that did not keep up", self.dropped)


def bind_failure(address: str, error: OSError) -> str:
    """Why the server cannot listen, in one line; the advice to choose another port only where the port
    is taken (a host that does not resolve, or an address not on this machine, needs another fix)."""
    text = f"cannot serve WebSocket on {address}: {error.strerror or error}"
    if error.errno == errno.EADDRINUSE:
        text += " (another emolive stream?); choose another port"
    return text
