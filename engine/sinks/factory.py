"""One place that turns what a user asked for (`emolive stream`'s output options) into sinks, as
engine.sources.factory does for the `--source` string."""
from __future__ import annotations

import argparse
import logging
import re
import time
from contextlib import ExitStack, suppress
from dataclasses import dataclass

from emolive.engine.defaults import DEFAULT_ADDRESS, OSC_TARGET, WEBSOCKET_ADDRESS
from emolive.engine.sinks.base import Sink, SinkError

log = logging.getLogger("emolive")
EMPTY_VALUE_FIXES = {  # the output options that take a value, and what to give instead of an empty one
    "publish": f"an address such as {DEFAULT_ADDRESS}, or --no-publish for none",
    "csv": "a file name",
    "osc": f"HOST:PORT, or --osc alone for {OSC_TARGET}",
    "websocket": f"HOST:PORT, or --websocket alone for {WEBSOCKET_ADDRESS}",
}
ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s]+")  # a web page's origin as its Origin header says it


@dataclass(frozen=True)
class SinkOptions:
    """The outputs of one stream; the terminal always gets a table, or JSON lines with `json`."""

    publish: str | None = DEFAULT_ADDRESS  # ZeroMQ PUB address; None: no publisher
    allow_remote: bool = False  # a non-loopback address for the publisher, OSC or WebSocket
    wait_subscriber: float = 0.0  # seconds to wait for a first reader of each output that can tell (ZeroMQ, LSL,
    # WebSocket)
    csv: str | None = None
    lsl: bool = False
    osc: str | None = None  # host:port
    websocket: str | None = None  # host:port
    websocket_origins: tuple[str, ...] = ()  # web pages' origins served besides this machine's
    json: bool = False
    stream_id: str = "default"  # the LSL source id

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SinkOptions:
        """The outputs `emolive stream`'s parsed arguments name. An empty value (`--csv "$OUT"` with OUT
        unset) is refused, not read as "no such output", and so is a wait for a subscriber of no publisher."""
        for option, wanted in EMPTY_VALUE_FIXES.items():
            if getattr(args, option) == "":
                raise SinkError(f"--{option} got an empty value: give {wanted}")
        if args.csv == "-":  # it wrote a file named "-"; stdout carries the table or --json's lines
            raise SinkError("--csv - : standard output carries the run's table (or --json's lines); give --csv a "
                            "file name, or read the lines of --json")
        if args.websocket_origin and not args.websocket:
            raise SinkError("--websocket-origin is for the WebSocket output: add --websocket")
        for origin in args.websocket_origin:
            if origin != "null" and not ORIGIN.fullmatch(origin):  # what a browser sends: no path, no trailing /
                raise SinkError(f"--websocket-origin {origin!r}: give a page's origin as browsers send it, "
                                "scheme://host[:port] (https://dashboard.example), or null for local files")
        if args.wait_subscriber is not None and not (args.publish or args.lsl or args.websocket):
            raise SinkError("--wait-subscriber waits for a reader of --publish, --lsl or --websocket, and --no-publish "
                            "leaves none: leave out one of them, or add --lsl or --websocket")
        return cls(publish=args.publish, allow_remote=args.allow_remote, wait_subscriber=args.wait_subscriber or 0.0,
                   csv=args.csv, lsl=args.lsl, osc=args.osc, websocket=args.websocket,
                   websocket_origins=tuple(args.websocket_origin), json=args.json, stream_id=args.stream_id)


def shared_port(publisher: str, websocket: str, allow_remote: bool) -> int | None:
    """The port a --websocket HOST:PORT would bind where this run's tcp publisher (its bound address) is
    bound already: the same number on the same host or a wildcard one; None where the two can coexist
    (an ipc publisher, another loopback address, port 0) or where the address is refused anyway."""
    from emolive.engine.sinks.endpoint import parse_endpoint

    transport, _, rest = publisher.partition("://")
    try:
        host, port = parse_endpoint(websocket, "--websocket", allow_remote=allow_remote)
    except SinkError:  # the WebSocket output says why, as it does without a publisher
        return None
    bound_host, _, bound_port = rest.rpartition(":")
    wildcard = {"*", "0.0.0.0", "::", ""}
    same_host = bound_host.strip("[]") == host or {bound_host.strip("[]"), host} & wildcard
    return port if transport == "tcp" and port != 0 and bound_port.isdigit() and int(bound_port) == port \
        and same_host else None


def open_sinks(options: SinkOptions, stack: ExitStack, class_names: tuple[str, ...] = (),
               at_hand: bool = False, live: bool = False) -> list[Sink]:
    """The publisher first (other programs wait on it), then the other network outputs, then the file, then
    the terminal; `stack` closes them. `at_hand`: the audio is a recording read as fast as it goes, so
    the publisher waits for a slow subscriber rather than dropping what it cannot take yet. `live`: the
    run's mode, which a final status sent before the run says (a wait for readers stopped by a signal)."""
    from emolive.engine.sinks import CsvSink, JsonLinesSink, LslSink, ZmqPublisher
    from emolive.engine.sinks.zmq_publisher import KEEP_UP_S
    from emolive.engine.sinks.table import TableSink

    sinks: list[Sink] = []
    readers: dict[str, Sink] = {}  # the outputs --wait-subscriber waits on
    publisher = None
    if options.publish:
        publisher = stack.enter_context(ZmqPublisher(options.publish, allow_remote=options.allow_remote,
                                                     keep_up_s=KEEP_UP_S if at_hand else None))
        sinks.append(publisher)
        readers["ZeroMQ"] = publisher
        log.info("publishing on %s", publisher.address)
    if options.lsl:
        readers["LSL"] = stack.enter_context(LslSink(source_id=options.stream_id, class_names=class_names))
        sinks.append(readers["LSL"])
    if options.osc:
        from emolive.engine.sinks.osc import OscSink

        osc = stack.enter_context(OscSink(options.osc, allow_remote=options.allow_remote))
        sinks.append(osc)
        log.info("sending OSC to %s", osc.target)
    if options.websocket:
        from emolive.engine.sinks.websocket import WebSocketSink

        if publisher is not None and (port := shared_port(publisher.address, options.websocket, options.allow_remote)):
            # its bind failed as "another emolive stream?", where the other was this run's own publisher
            raise SinkError(f"--websocket {options.websocket}: port {port} is this run's --publish port; give each "
                            "output a port of its own")
        websocket = stack.enter_context(WebSocketSink(options.websocket, allow_remote=options.allow_remote,
                                                      origins=options.websocket_origins))
        sinks.append(websocket)
        readers["WebSocket"] = websocket
        log.info("serving WebSocket on ws://%s", websocket.address)
    if options.wait_subscriber > 0:
        try:
            wait_for_readers(readers, options.wait_subscriber)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the readers that came wait on the run's end, so they hear it
            stopped_before_start(sinks, options.stream_id, live)
            raise
    if options.csv:  # the file last: opening it empties it, which a busy port above must not have cost
        sinks.append(stack.enter_context(CsvSink(options.csv)))
    sinks.append(JsonLinesSink() if options.json else TableSink())
    return sinks


def stopped_before_start(sinks: list[Sink], stream_id: str, live: bool) -> None:
    """The final status of a run stopped before it began ("stopped", nothing read), to each of `sinks`
    that takes it: a reader that connected during the wait had waited for it for ever."""
    from emolive.engine.runner import NOT_STARTED, run_status
    from emolive.engine.schema import END_STOPPED

    status = run_status(stream_id, NOT_STARTED, lag_s=0.0, live=live, ended=END_STOPPED)
    for sink in sinks:
        with suppress(SinkError):  # one that cannot take it: the others still do
            sink.status(status)


def wait_for_readers(readers: dict[str, Sink], timeout_s: float) -> None:
    """Wait, up to `timeout_s` in all, for a first reader of each output, so none misses the first
    estimates: an LSL inlet or WebSocket client had no wait, and a file run read fast was over before
    either could connect. Every output is up before the wait, so one connects while another is waited on."""
    deadline = time.monotonic() + timeout_s
    for name, sink in readers.items():
        if not sink.wait_for_subscriber(max(0.0, deadline - time.monotonic())):
            log.warning("no %s subscriber within the %g s wait (shared by the outputs); starting anyway", name,
                        timeout_s)
