"""`emolive`: stream estimates from a voice, listen to a running stream, list models and devices.

Errors a user can cause (bad file, busy port, mismatched bundle, no device…) are caught once, in
`main`, and printed as one line `emolive: error: …` with exit status 1; a traceback means a bug.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from emolive.engine import console, score
from emolive.engine.errors import EmoliveError
from emolive.engine.defaults import DEFAULT_ADDRESS, OSC_TARGET, RAW_SAMPLE_FORMATS, WEBSOCKET_ADDRESS, package_version
from emolive.engine.plugin import registered_models, summarise
from emolive.engine.schema import StreamIdError, check_stream_id, printable
from emolive.engine.session import (USER_ERRORS, StreamConfig, add_stream_options, load_model_one_thread, open_stream,
                                    summary)

if TYPE_CHECKING:  # the engine proper (numpy, numba, zmq, audio) is imported by the commands that run it
    from emolive.engine.runner import Runner

COMMANDS_GROUP = "emolive.commands"  # entry points: callables adding a subcommand to the parser's subparsers
MAX_WAIT_S = 86400.0  # a day: longer than anyone waits for a subscriber, far inside a C int of milliseconds
MIN_OPEN_FILES = 32  # a stream with every output and score --jobs 2 were measured to run within it
WANTED_OPEN_FILES = 1024  # a soft limit below this is raised to it, where the hard limit allows
SAME_REQUEST_S = 0.5  # the same signal again this soon is the same stop request, not an insisting second one
STOP_GRACE_S = 10.0  # how long a stopped run may go without an estimate (its last windows, the final status)
log = logging.getLogger("emolive")


def main(argv: list[str] | None = None) -> int:
    try:  # the commands' entry points load first: Ctrl-C then is one line too, as at any later moment
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        print("emolive: interrupted before it started", file=sys.stderr)
        return 130
    console.configure("emolive", args.verbose - args.quiet)
    try:
        ensure_open_files()
        return args.command(args)
    except USER_ERRORS as exc:
        log.error("error: %s", " ".join(str(exc).split()))
        silence_broken_stdout()
        return 1
    except BrokenPipeError:  # `emolive models | head -1`: what the text outputs say for the same (engine.sinks.lines)
        log.error("error: the reader of standard output closed its end of the pipe")
        silence_broken_stdout()
        return 1
    except MemoryError:  # a traceback ended in numpy's "Unable to allocate 2.69 MiB" under ulimit -v
        log.error("error: out of memory: give emolive more (ulimit -v), or score long recordings in parts "
                  "(emolive score --per window keeps less)")
        return 1
    except console.Terminated as ended:  # SIGTERM 143, SIGHUP 129, as `score`, `listen`, the GUI and `trainer` exit
        return 128 + ended.signum
    except KeyboardInterrupt:
        return 130


def ensure_open_files() -> None:
    """Room for the descriptors a run opens (model files, sockets, worker pipes): a soft limit below
    WANTED_OPEN_FILES is raised towards the hard one, and a hard limit below MIN_OPEN_FILES is one
    line. Below about 12, libzmq aborted the process from an assertion, and the VAD's graph was said
    to be missing."""
    try:
        import resource
    except ImportError:  # not on Windows: its limits are the C runtime's, far above these
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < WANTED_OPEN_FILES and soft != hard:
        wanted = WANTED_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, WANTED_OPEN_FILES)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    if soft < MIN_OPEN_FILES:
        raise EmoliveError(f"emolive needs at least {MIN_OPEN_FILES} open files and may open {soft} (ulimit -n): "
                           f"raise the limit, e.g. ulimit -n {WANTED_OPEN_FILES}")


def silence_broken_stdout() -> None:
    """When the reader of stdout went away (`| head`), keep the interpreter's final flush from complaining."""
    if sys.stdout is None:  # closed from the start (`>&-`): nothing to flush
        return
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emolive", description="Real-time speech emotion recognition: "
                                     "activation, valence and dominance (1-7) from a live voice.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    console.add_arguments(parser)
    commands = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=console.DefaultsParser)
    add_stream_parser(commands)
    score.add_parser(commands)
    listen = commands.add_parser("listen", help="subscribe to a running stream and print it",
                                 description="Print what a running `emolive stream` publishes on ZeroMQ: a table, "
                                 "or JSON lines with --json. Messages off the schema are counted and skipped.")
    listen.add_argument("--connect", default=DEFAULT_ADDRESS, action=console.Once, help="publisher address")
    listen.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    listen.add_argument("--count", type=score.positive_int, default=None, help="exit after this many estimates")
    listen.add_argument("--turns", action="store_true", help="also print each speech turn's estimate when it ends "
                        "(JSON: lines with a `kind` field; table: rows starting '# turn')")
    listen.add_argument("--until-end", action="store_true",
                        help="exit when a stream ends (its final status); without it, listening goes on for the next run")
    listen.add_argument("--stream-id", type=stream_id, metavar="ID",
                        help="only this stream of the publisher's (default: all, whose rows interleave)")
    listen.set_defaults(command=cmd_listen)
    commands.add_parser("models", help="list the registered models", description="The models --model accepts by "
                        "name: size, front end, device and architecture (or why one is unavailable)."
                        ).set_defaults(command=cmd_models)
    commands.add_parser("devices", help="list audio input devices", description="Audio input devices PortAudio "
                        "sees, with their rate, channels and the channels used by default (--device picks one)."
                        ).set_defaults(command=cmd_devices)
    for add_command in entry_points(group=COMMANDS_GROUP):  # `gui` comes from the gui package: engine never imports it
        add_command.load()(commands)
    return parser


def add_stream_parser(commands: argparse._SubParsersAction) -> None:
    stream = commands.add_parser("stream", help="estimate emotion from a microphone, file, pipeline or stdin",
                                 description="Without --source: the microphone, or the bundled demo clip at "
                                 "real time when there is none. Publishes on ZeroMQ and prints a live table.")
    add_stream_options(stream, source_help="audio file, GStreamer pipeline (e.g. 'audiotestsrc num-buffers=50'), "
                       "or '-' for raw PCM on stdin (default: microphone); a pipeline or stdin is read until it "
                       "ends, however long it waits for audio (a udpsrc for its sender)")
    publish = stream.add_mutually_exclusive_group()
    publish.add_argument("--publish", default=DEFAULT_ADDRESS, metavar="ADDRESS",
                         help="ZeroMQ PUB address")
    publish.add_argument("--no-publish", dest="publish", action="store_const", const=None, help="do not publish")
    stream.add_argument("--allow-remote", action="store_true",
                        help="allow non-loopback --publish, --osc and --websocket addresses")
    # no default: SinkOptions.from_args refuses it beside --no-publish, and reads it absent as no wait
    stream.add_argument("--wait-subscriber", type=wait_seconds, metavar="SECONDS",
                        help="before starting, wait up to this long for a reader of each of --publish, --lsl and "
                        "--websocket, so none misses anything (no wait when not given)")
    stream.add_argument("--json", action="store_true", help="print one JSON estimate per line instead of a table")
    stream.add_argument("--csv", metavar="FILE", help="also write estimates to a CSV file")
    stream.add_argument("--lsl", action="store_true", help="also send estimates to a Lab Streaming Layer outlet "
                        "(channels: activation, valence, dominance, speech, one p_<class> per class)")
    stream.add_argument("--osc", nargs="?", const=OSC_TARGET, metavar="HOST:PORT",
                        help=f"also send OSC messages (/emolive/<stream>/avd, /class, /speech, /turn) to HOST:PORT "
                        f"(without a value: {OSC_TARGET})")
    stream.add_argument("--websocket", nargs="?", const=WEBSOCKET_ADDRESS, metavar="HOST:PORT",
                        help=f"also serve the ZeroMQ messages as JSON to WebSocket clients on HOST:PORT "
                        f"(without a value: {WEBSOCKET_ADDRESS})")
    stream.add_argument("--websocket-origin", action="append", default=[], metavar="ORIGIN",
                        help="also serve web pages of this origin (e.g. https://dashboard.example; repeatable); "
                        "pages served from this machine (http://localhost:PORT) and programs always are")
    stream.add_argument("--realtime", action="store_true", help="treat the source as live: pace files, stdin and "
                        "pipelines at real time, skip windows when the model falls behind (always on for the "
                        "microphone)")
    # no defaults here: StreamConfig.from_args refuses them beside any other source, and fills in its own
    stream.add_argument("--raw-format", choices=sorted(RAW_SAMPLE_FORMATS), help="sample format of --source - "
                        "(f32le when not given)")
    stream.add_argument("--rate", type=float, help="sample rate in Hz of --source - (raw PCM says nothing about "
                        "itself; it is resampled to 16 kHz; 16000 when not given)")
    stream.add_argument("--channels", type=int, help="interleaved channels of --source - (mixed to mono, or "
                        "those --channel picks; 1 when not given)")
    stream.add_argument("--stream-id", type=stream_id, default="default", help="stream id in topics and payloads")
    stream.set_defaults(command=cmd_stream)


def cmd_stream(args: argparse.Namespace) -> int:
    from emolive.engine.sinks.base import SinkError
    from emolive.engine.sinks.factory import SinkOptions, open_sinks
    from emolive.engine.sources import AudioSourceError

    from emolive.engine.row_writers import check_not_an_input, check_not_in_bundle
    from emolive.engine.sources.factory import files_of_source

    config = StreamConfig.from_args(args)
    outputs = SinkOptions.from_args(args)
    if args.csv and config.source is not None:
        check_not_an_input(args.csv, files_of_source(config.source), "--csv")
    with ExitStack() as stack:
        # SIGTERM or SIGHUP before the run (the model loading, --wait-subscriber's wait) ends as Ctrl-C does
        # there, exit 128 + the signal with nothing half done (readers waiting get a "stopped" status); it had
        # killed the process
        stack.enter_context(console.terminate_as_interrupt())
        model = load_model_one_thread(config.model)
        if args.csv:
            check_not_in_bundle(args.csv, model, "--csv")
        stream = stack.enter_context(open_stream(config, notify=notify))
        # a stand-in for the microphone is a warning: `-q` hid it, and a script got the demo clip's estimates
        (log.warning if stream.stood_in else log.info)("reading %s; model %s", stream.description,
                                                       printable(model.name))
        sinks = open_sinks(outputs, stack, model.meta.class_names, at_hand=stream.source.at_hand, live=config.live)
        stream.source.discard_captured()  # the run begins once its outputs are up
        runner = stream.runner(model, sinks)
        with stop_on_signal(runner) as interrupted:
            try:
                stats = runner.run()
            except (AudioSourceError, SinkError):  # the summary of what was done, then main's one-line error
                log.info("%s", summary(runner.stats))
                raise
    log.info("%s", summary(stats))
    return 128 + interrupted[0] if interrupted else 0  # 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP


@contextmanager
def stop_on_signal(runner: Runner) -> Iterator[list[int]]:
    """Ctrl-C, SIGTERM or SIGHUP during `runner.run()` ask it to stop, so it still sends every estimate it made,
    the final status (whose count matches them) and returns its stats; a second Ctrl-C interrupts at once
    (not the same signal within SAME_REQUEST_S: `timeout` sends its SIGTERM twice, and the summary was lost).

    The yielded list gets the signal's number; outside the main thread (no signal handlers there)
    it stays empty and signals keep their default action.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    ended, main = threading.Event(), threading.main_thread().ident
    first = [0.0]  # when the first signal came

    def insist(signum: int) -> None:
        """The signal again, to the main thread, while the run has not ended and sends nothing more: a
        write to a reader that stopped reading (a full stdout pipe) blocks where a stop request is never
        seen, and only a signal to the blocked thread ends its system call (the process hung until
        SIGKILL). A run still finishing (a slow model's last windows) makes estimates, and is let be."""
        sent = runner.stats.estimates
        while not ended.wait(STOP_GRACE_S):
            if runner.stats.estimates == sent:
                signal.pthread_kill(main, signum)
            sent = runner.stats.estimates

    def stop(signum: int, frame: Any) -> None:
        if received and signum == received[0] and time.monotonic() - first[0] < SAME_REQUEST_S:
            return  # one request sent twice: GNU timeout signals its child and then its whole group
        received.append(signum)
        if len(received) > 1:  # a second signal, or the first insisting: at once
            raise console.interruption(received[0])
        first[0] = time.monotonic()
        runner.stop()
        threading.Thread(target=insist, args=(signum,), name="emolive-stop", daemon=True).start()

    previous = console.take_signals((signal.SIGINT, *console.ENDING_SIGNALS), stop)
    try:
        yield received
    finally:
        ended.set()
        console.restore_signals(previous)


def stream_id(text: str) -> str:
    """argparse type: a stream id the schema accepts (it becomes part of the ZeroMQ topic)."""
    try:
        return check_stream_id(text)
    except StreamIdError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def wait_seconds(text: str) -> float:
    """argparse type: a wait between 0 and MAX_WAIT_S seconds (libzmq's poll takes a C int of milliseconds)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= MAX_WAIT_S:
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds from 0 to {MAX_WAIT_S:g}")
    return seconds


def cmd_listen(args: argparse.Namespace) -> int:
    from emolive.engine import listen  # zmq and the sinks only when listening

    return listen.cmd_listen(args)


def cmd_models(args: argparse.Namespace) -> int:
    from emolive.engine.sinks.lines import print_line  # here: the sinks bring zmq, which `emolive --help` never needs

    rows = [["name", "size", "input", "device", "model"]]
    for name in sorted(registered_models()):
        try:
            model = summarise(name)
        except Exception as exc:  # a broken or not-yet-installed plugin must not hide the others
            rows.append([name, "-", "-", "-", f"unavailable: {printable(' '.join(str(exc).split()))}"])
            continue
        size = f"{model.size_bytes / 1e6:.3f} MB" + (f" + {printable(model.pretrained)}" if model.pretrained else "")
        rows.append([name, size, printable(model.input), printable(model.device),
                     printable(f"{model.architecture}, {model.n_classes} classes")])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print_line("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from emolive.engine.sinks.lines import print_line
    from emolive.engine.sources import list_input_devices
    from emolive.engine.sources.microphone import describe_channels

    devices = list_input_devices()
    if not devices:
        log.warning("no audio input devices found (no sound card, or PortAudio sees none); "
                    "use `emolive stream --source FILE` instead")
    for device in devices:
        print_line(f"{device.index:3d}  {device.name}  ({device.samplerate:g} Hz, {device.channels} ch; "
                   f"default {describe_channels(device.default_channels, device.channels)})")
    return 0


def notify(message: str) -> None:
    """A source's one-line news (a microphone lost or back) for the person at the terminal."""
    log.warning("%s", message)


if __name__ == "__main__":
    sys.exit(main())
