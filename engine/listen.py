"""`emolive listen`: print what a running stream publishes, treating every message as untrusted.

Anyone who can reach the address can publish to it, so each message goes through
`engine.schema.parse_message`; one off the schema is counted and reported on stderr, and
listening goes on. Reports come at most once per REPORT_INTERVAL_S, each with the count so far,
so a flood of bad messages cannot flood the terminal; the last count is printed on exit.
"""
from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import zmq

from emolive.engine.console import terminate_as_interrupt
from emolive.engine.handshake import HandshakeWatch
from emolive.engine.schema import (END_FAILED, ESTIMATE_TOPIC, STATUS_TOPIC, TURN_TOPIC, Rejections, SchemaError,
                                   end_line, parse_message, topic_prefix)
from emolive.engine.sinks import JsonLinesSink, SinkError
from emolive.engine.sinks.table import TableSink
from emolive.engine.sinks.zmq_publisher import check_resolves, validate_address

log = logging.getLogger(__name__)

REPORT_INTERVAL_S = 1.0
WATCH_POLL_MS = 200  # how often a quiet subscription looks at its handshakes


def cmd_listen(args: argparse.Namespace) -> int:
    sink = JsonLinesSink() if args.json else TableSink(announce_end=True)
    # a turn as a JSON line of its own (its `kind` tells it from an estimate), or a row marked as one
    show_turn = sink.emit if args.json else sink.note_turn
    with zmq.Context.instance().socket(zmq.SUB) as sub:
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.IPV6, validate_address(args.connect, connect=True))
        check_resolves(args.connect)
        for kind in (ESTIMATE_TOPIC, STATUS_TOPIC, *((TURN_TOPIC,) if args.turns else ())):
            sub.setsockopt(zmq.SUBSCRIBE, topic_prefix(kind))
        watch = HandshakeWatch(sub, args.connect)
        try:
            try:
                sub.connect(args.connect)
            except zmq.ZMQError as exc:
                raise SinkError(f"cannot connect to {args.connect}: {exc.strerror}") from None
            log.info("listening to %s (Ctrl-C to stop)", args.connect)
            # SIGTERM as Ctrl-C: it killed the process (exit -15), the last count of ignored messages unsaid
            with terminate_as_interrupt():
                final = listen_until(args, sub, sink, show_turn, watch)
        finally:
            watch.close()
    if final is not None and final.get("end_reason") == END_FAILED:  # a partial run's estimates: not a success
        log.error("%s", end_line(final))
        return 1
    return 0


def listen_until(args: argparse.Namespace, sub: zmq.Socket, sink: JsonLinesSink | TableSink,
                 show_turn: Callable[[Mapping[str, Any]], None], watch: HandshakeWatch) -> Mapping[str, Any] | None:
    """Print what `sub` receives until --count estimates, the stream's end (--until-end) or a signal;
    the count of messages refused is said once a second at most, and its last one on the way out; a
    peer that is no ZeroMQ publisher is said once (`watch`). Returns the final status that ended it
    under --until-end, else None."""
    rejections, pending, last_report = Rejections(), "", -REPORT_INTERVAL_S
    received = 0
    try:
        while args.count is None or received < args.count:
            if note := watch.note():
                (log.warning if watch.failing else log.info)("%s", note)
            if not sub.poll(WATCH_POLL_MS):
                continue
            try:
                kind, payload = parse_message(sub.recv_multipart())
            except SchemaError as exc:
                pending = rejections.add(exc)
                if time.monotonic() - last_report >= REPORT_INTERVAL_S:
                    log.warning("%s", pending)
                    pending, last_report = "", time.monotonic()
                continue
            if args.stream_id is not None and payload["stream"] != args.stream_id:  # a topic prefix matches longer ids
                continue
            if kind == ESTIMATE_TOPIC:
                sink.emit(payload)
                received += 1
            elif kind == TURN_TOPIC:
                show_turn(payload)
            else:
                sink.status(payload)
                ended = end_line(payload)
                if args.until_end and ended is not None:
                    return payload
                if args.json and ended is not None:  # the table's "# stream X failed: …" row (JSON: estimates only)
                    (log.warning if payload.get("end_reason") == END_FAILED else log.info)("%s", ended)
    finally:
        if pending:
            log.warning("%s", pending)
    return None
