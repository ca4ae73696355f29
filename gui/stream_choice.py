"""Which of a publisher's streams a `--connect` window shows.

Every stream on a publisher has topics of its own (`avd.<stream>`), and a window subscribed to all of
them drew two streams as one run restarted at each message: it cleared its plots 36 times in 36
estimates and never drew a line. The window shows one stream: the one named (`--stream-id`), or else
the first it hears until that run ends (its final status) or goes quiet (a publisher killed sends no
final status); the others are named once each in the status bar.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from emolive.engine.schema import STATUS_TOPIC

QUIET_S = 5.0  # a followed stream unheard this long gives way (a live one sends a status every second)


class StreamChoice:
    """`accepts` says whether a message belongs to the stream shown; `passed_over` names a stream left out
    the first time it is heard (None after that)."""

    def __init__(self, wanted: str | None = None) -> None:
        self.wanted = wanted
        self.shown: str | None = wanted
        self._heard = -math.inf  # when the shown stream last sent anything (time.monotonic)
        self._passed_over: set[str] = set()

    def accepts(self, kind: str, payload: Mapping[str, Any], now: float) -> bool:
        stream = payload["stream"]
        if self.wanted is None and (self.shown is None or now - self._heard > QUIET_S):
            self.shown = stream
        if stream != self.shown:
            return False
        self._heard = now
        if self.wanted is None and kind == STATUS_TOPIC and payload.get("ended") is True:
            self.shown = None  # the run ended: the next stream heard is shown
        return True

    def passed_over(self, stream: str) -> str | None:
        """One line for the status bar the first time `stream` is left out; None after that."""
        if stream in self._passed_over:
            return None
        self._passed_over.add(stream)
        return f"not shown: stream {stream!r} on the same publisher; this window shows {self.shown!r} (choose one " \
               "with --stream-id)"
