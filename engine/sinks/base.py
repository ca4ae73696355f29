"""The one interface every output implements: estimates in, nothing back."""
from __future__ import annotations

import abc
from collections.abc import Mapping
from types import TracebackType
from typing import Any


class SinkError(Exception):
    """A problem the user can fix (address in use, missing extra, unwritable file); its text is one line."""


class Sink(abc.ABC):
    """Receives estimate and status payloads (engine.schema) from the runner."""

    @abc.abstractmethod
    def emit(self, estimate: Mapping[str, Any]) -> None:
        """Deliver one estimate; must not block the engine on a slow reader."""

    def status(self, status: Mapping[str, Any]) -> None:
        """Deliver a status payload; outputs with no status channel (files, LSL) ignore it."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release sockets and files; safe to call more than once."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
