"""Command-line conventions shared by `emolive` and `trainer`: logging, -v/-q, --help with defaults,
SIGTERM ending a command as Ctrl-C does.

Diagnostics go through `logging` (never print): -v shows debug detail, -q leaves warnings and
errors. Messages keep the `emolive: …` shape users already read on stderr; results (tables, JSON lines,
CSV) go to stdout and are not logging.
"""
from __future__ import annotations

import argparse
import copy
import faulthandler
import functools
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any
from contextlib import contextmanager



class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default said once, by argparse from the value in use (for the trainer, the
    config dataclasses' defaults), never typed in a help text. Left out where it says nothing:
    flags, required options, and a default of None or [] whose meaning the help text gives. An
    option whose type checks a range (the trainer's Bounded: it has `admits`) says the range too,
    from that same type, as docs/training.md promises."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.help and hasattr(action.type, "admits"):
            action = copy.copy(action)
            action.help = f"{action.help} ({action.type})"
        if action.nargs == 0 or action.required or action.default in (None, []):
            return action.help
        return super()._get_help_string(action)


class Once(argparse.Action):
    """An option that follows one thing and may be given once: a second value is an error, not the silent
    replacement argparse makes (`listen --connect A --connect B` followed B alone, and A's estimates
    were dropped without a word)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        if getattr(namespace, f"_{self.dest}_given", False):
            parser.error(f"argument {option_string}: given twice; one command follows one publisher, so run one "
                         "per address")
        setattr(namespace, f"_{self.dest}_given", True)
        setattr(namespace, self.dest, values)


# every command's and subcommand's --help shows its defaults this way, one class for both programs
DefaultsParser = functools.partial(argparse.ArgumentParser, formatter_class=DefaultsFormatter)
LEVELS = (logging.WARNING, logging.INFO, logging.DEBUG)  # -q, default, -v


class TerminalSafeFormatter(logging.Formatter):
    """Log lines with control characters escaped (but line breaks and tabs): a file name holding an
    escape sequence (ESC ] 0 ; ... BEL sets a terminal's title) reached the terminal raw in errors and
    in "reading file ..." lines. A name's bytes that are not UTF-8 read \\xNN, as the outputs write them
    (engine.table_names; they had read \\udcNN here)."""

    def format(self, record: logging.LogRecord) -> str:
        from emolive.engine.schema import printable
        from emolive.engine.table_names import table_text

        return printable(table_text(super().format(record)), keep="\n\t")


def configure(program: str, verbosity: int) -> None:
    """`verbosity` is the count of -v minus the count of -q (0: info and up)."""
    report_crashes()
    level = LEVELS[max(0, min(len(LEVELS) - 1, 1 + verbosity))]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TerminalSafeFormatter(f"{program}: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("numba", "matplotlib", "PIL"):  # their debug output drowns ours under -v
        logging.getLogger(noisy).setLevel(max(level, logging.INFO))
    # each client's connection is an INFO line of the websockets library: detail, for -v only
    logging.getLogger("websockets").setLevel(logging.WARNING if level >= logging.INFO else level)


def report_crashes() -> None:
    """A crash in native code (a decoder, a runtime, a kernel) prints every thread's Python stack on stderr:
    a command had died with exit status -11 and nothing else, which no one could report or place. Left
    off where stderr is closed (`2>&-`) or has no descriptor (a program's captured stream)."""
    try:
        faulthandler.enable(file=sys.stderr, all_threads=True)
    except (RuntimeError, ValueError, OSError):  # no sys.stderr, or one without a file descriptor
        pass


def configured() -> tuple[str, int] | None:
    """(program, verbosity) where `configure` set this process's logging, else None: what a worker
    process needs to log as its parent does (spawned, it starts with Python's defaults, which dropped
    `-v` lines and the "emolive:" prefix of its warnings)."""
    root = logging.getLogger()
    handler = root.handlers[0] if len(root.handlers) == 1 else None
    if handler is None or not isinstance(handler.formatter, TerminalSafeFormatter) or root.level not in LEVELS:
        return None
    return handler.formatter._fmt.split(":", 1)[0], LEVELS.index(root.level) - 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """-v/--verbose and -q/--quiet, counted (-vv is more)."""
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more detail on stderr (debug)")
    parser.add_argument("-q", "--quiet", action="count", default=0, help="only warnings and errors on stderr")


def bar_disabled(show: bool) -> bool | None:
    """tqdm's `disable` for a progress bar the caller wants shown or not: None shows it on a terminal
    only (a piped log gets no carriage-return noise), True never; never where stderr is closed
    (`2>&-`: Python's sys.stderr is None, and tqdm failing on it ended `score` after its header)."""
    return None if show and sys.stderr is not None else True


ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
"""Signals that end a command as Ctrl-C does, exit status 128 + the signal's number: SIGHUP comes when its
terminal closes (an ssh session dropped), and had killed a command before its last words (a stream's final
status, listen's last count, score's summary)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (or another signal that asks a command to end: `signum`), raised where the command is, so it
    ends as Ctrl-C does (a batch keeps its rows whole and says how far it got; training says where its
    checkpoint is), and exits 128 + `signum`."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__()
        self.signum = signum


class Signalled:
    """The ending signals received while `terminate_as_interrupt`'s block runs. Python drops an exception
    that a signal raises inside a finaliser ("Exception ignored in: SoundFile.__del__ ... KeyboardInterrupt"):
    a Ctrl-C of `score` was lost so, and the batch went on to its end and exit status 0. `check()`, at
    each point where the command may end (a file done), raises it again."""

    def __init__(self) -> None:
        self.signums: list[int] = []

    def check(self) -> None:
        if self.signums:
            raise interruption(self.signums[0])


def interruption(signum: int) -> KeyboardInterrupt:
    """What a signal that ends a command raises: KeyboardInterrupt for Ctrl-C, Terminated for the others."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


@contextmanager
def terminate_as_interrupt(signums: tuple[int, ...] = ENDING_SIGNALS) -> Iterator[Signalled]:
    """Each of `signums` raises Terminated (SIGINT: KeyboardInterrupt) while the block runs, and is noted in
    the yielded Signalled; off the main thread (a command run from a program's thread), where no
    handler can be set, signals keep their action."""
    signalled = Signalled()
    if threading.current_thread() is not threading.main_thread():
        yield signalled
        return

    def handler(signum: int, frame: object) -> None:
        signalled.signums.append(signum)
        raise interruption(signum)
    previous = take_signals(signums, handler)
    try:
        yield signalled
    finally:
        restore_signals(previous)


def take_signals(signums: tuple[int, ...], handler: Callable[[int, Any], Any]) -> dict[int, Any]:
    """Install `handler` for each of `signums` that is not ignored; what each had, for `restore_signals`.
    A signal ignored from the start stays so: a shell starts `cmd &` with SIGINT ignored so that Ctrl-C
    reaches only the job in front, and a background `emolive stream` had been stopped by it."""
    return {signum: signal.signal(signum, handler) for signum in signums
            if signal.getsignal(signum) is not signal.SIG_IGN}


def restore_signals(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
