"""What the window needs from wherever estimates come from: signals, start, stop, and an optional level."""
from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import QObject, Signal


class FeedSignals(QObject):
    """Lives in the GUI thread; a feed may emit from any thread and Qt queues the call to the GUI thread.

    Every `start()` ends with exactly one `finished` (RunStats, or None when there are none),
    after `error` when it failed.
    """

    estimate = Signal(object)  # an engine.schema estimate dict
    status = Signal(object)  # an engine.schema status dict
    turn = Signal(object)  # an engine.schema turn dict (a speech turn that ended)
    started = Signal(str)  # what is playing, in words
    error = Signal(str)  # one line a user can act on
    notice = Signal(str)  # news of the source, not an error: a microphone lost, and back (--reconnect)
    rejected = Signal(str)  # a message that was not emolive's was ignored: the count and why, in one line
    finished = Signal(object)


class Feed(Protocol):
    """EngineFeed (the engine in a thread) or ZmqFeed (a running stream)."""

    signals: FeedSignals

    def start(self) -> None: ...

    def stop(self) -> None:
        """Stop and, for a thread, wait for it: after this no thread of the feed's is left."""

    @property
    def running(self) -> bool: ...

    @property
    def level_dbfs(self) -> float | None:
        """Level of the newest audio block, or None where the feed sees no audio."""
