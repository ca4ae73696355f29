"""The one interface every output implements: estimates in, nothing back."""
from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

from emolive.engine.closing import Closing
from emolive.engine.errors import EmoliveError


class SinkError(EmoliveError):
    """A problem the user can fix (address in use, missing extra, unwritable file); its text is one line."""


class Sink(Closing):
    """Receives estimate and status payloads (engine.schema) from the runner."""

    @abc.abstractmethod
    def emit(self, estimate: Mapping[str, Any]) -> None:
        """Deliver one estimate; must not block the engine on a slow reader."""

    def status(self, status: Mapping[str, Any]) -> None:
        """Deliver a status payload; outputs with no status channel (files, LSL) ignore it."""

    def turn(self, turn: Mapping[str, Any]) -> None:
        """Deliver a turn payload (engine.schema); outputs that carry windows only ignore it."""

    def wait_for_subscriber(self, timeout_s: float) -> bool | None:
        """Block until a reader of this output is there (True) or `timeout_s` passes (False), for
        `--wait-subscriber`; None for an output that cannot tell (a file, the terminal, OSC's datagrams)."""
        return None

    def takes_turns(self) -> bool:
        """Whether `turn` keeps speech turns (kind "turn"). Where no sink of a run does, the runner
        makes none, saving one model call per turn (14 % of an analysis of speech). By default:
        whether the output has a `turn` of its own."""
        return type(self).turn is not Sink.turn
