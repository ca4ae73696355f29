"""`emolive gui`: its options, registered on the `emolive` parser through the `emolive.commands` entry point.

Qt is imported only when the command runs, so `emolive stream` never pays for it.
"""
from __future__ import annotations

import argparse
import signal
from collections.abc import Callable
from functools import partial
from types import FrameType

from emolive.engine import console
from emolive.engine.defaults import DEFAULT_ADDRESS, DEFAULT_HOP_S, DEFAULT_MODEL, DEFAULT_WINDOW_S
from emolive.engine.session import add_stream_options


def add_parser(commands: argparse._SubParsersAction) -> None:
    from emolive.engine.cli import stream_id  # loaded: it is building the parser this adds to

    gui = commands.add_parser("gui", help="the live desktop window",
                              description="A window plotting activation, valence and dominance live. It runs the "
                              "engine itself (microphone, or the bundled demo clip at real time when there is "
                              "none; files play at real time) or shows a running stream (--connect).")
    add_stream_options(gui, source_help="audio file or GStreamer pipeline to play, or '-' for raw float32 "
                       "mono 16 kHz PCM on stdin (default: microphone)")
    gui.add_argument("--connect", nargs="?", const=DEFAULT_ADDRESS, metavar="ADDRESS", action=console.Once,
                     help=f"show a running `emolive stream` instead (at {DEFAULT_ADDRESS} when no address is given)")
    gui.add_argument("--stream-id", type=stream_id, metavar="ID", help="with --connect: show this stream of the "
                     "publisher's (default: the first heard, until its run ends)")
    gui.add_argument("--screenshot", metavar="PNG", help="play --source as fast as possible, save a grab of the "
                     "window once every estimate is drawn, and exit")
    gui.set_defaults(command=partial(cmd_gui, parser=gui))


class Interrupt:
    """`emolive gui`'s SIGINT, SIGTERM and SIGHUP, from its first moment: while Qt loads they are only noted (a
    Ctrl-C then aborted the interpreter inside shiboken's start, or was lost and the window came up
    anyway), and once the window is up they close it as its close button does. `code` is the exit
    status the first asks for: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP (its terminal closed: it had
    killed the window without its cleanup), as `emolive score` and `trainer` exit."""

    def __init__(self) -> None:
        self.code: int | None = None
        self.close: Callable[[], object] | None = None  # the window's, once there is one

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.code is None:
            self.code = 128 + signum
        if self.close is not None:
            self.close()


def cmd_gui(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.screenshot and (args.source is None or args.connect is not None):
        parser.error("--screenshot needs --source FILE (and no --connect)")
    if args.stream_id is not None and args.connect is None:
        parser.error("--stream-id picks a stream of --connect's publisher; the window's own run has one stream")
    if args.connect is not None:  # `--connect ""` is an address too, malformed: it had run the window's own engine
        # the window shows another process's stream: what would make its own was silently dropped
        given = {"--source": args.source is not None, "--device": args.device is not None,
                 "--channel": bool(args.channel), "--reconnect": args.reconnect, "--model": args.model != DEFAULT_MODEL,
                 "--window": args.window != DEFAULT_WINDOW_S, "--hop": args.hop != DEFAULT_HOP_S}
        local = [option for option, present in given.items() if present]
        if local:
            parser.error(f"{', '.join(local)}: for a stream of the window's own; with --connect the window shows the "
                         "publisher's (give those to its `emolive stream`)")
        from emolive.engine.sinks.zmq_publisher import check_resolves, validate_address

        validate_address(args.connect, connect=True)  # one line and exit 1, as `listen`, not a status-bar note
        check_resolves(args.connect)
    from emolive.engine.features.config import FrontEndConfig
    from emolive.engine.windows import WindowSpec

    WindowSpec.from_seconds(args.window, args.hop, FrontEndConfig())  # stream's rule, in one line, before the window
    if args.source is not None:  # the microphone's options beside a file are refused, as by `emolive stream`
        from emolive.engine.row_writers import check_not_an_input
        from emolive.engine.session import microphone_options
        from emolive.engine.sources.factory import check_for_a_source

        check_for_a_source(args.source, microphone_options(args))
        if args.screenshot:  # the picture would be written over the recording it shows
            check_not_an_input(args.screenshot, [args.source], "--screenshot")
    interrupt = Interrupt()
    previous = console.take_signals((signal.SIGINT, *console.ENDING_SIGNALS), interrupt)
    try:
        from emolive.gui.app import run_app

        return run_app(args, interrupt)
    finally:
        console.restore_signals(previous)
