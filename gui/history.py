"""What the window has received: fixed-size ring buffers that feeds append to and the redraw reads.

Appending is O(1) and never draws anything, so estimates can arrive at any rate (or in a burst
after the GUI was busy) without costing frames; the 50 ms redraw copies out at most `capacity`
rows, which bounds its cost however long the session runs.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from emolive.engine.schema import DIMENSIONS
CAPACITY = 3000  # 60 s of traces at the smallest hop, one 20 ms frame (2400 had held 48 s of it)
TURNS = 200  # speech turns kept for the traces: far more than 60 s can hold


class EstimateHistory:
    """The newest `capacity` estimates as (end time, activation, valence, dominance) rows, plus the latest one."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._rows = np.zeros((capacity, 1 + len(DIMENSIONS)))
        self.total = 0  # estimates appended since the last clear; also the redraw's "anything new?" check
        self.latest: Mapping[str, Any] | None = None
        self.latest_status: Mapping[str, Any] | None = None
        self.turns: list[tuple[float, float]] = []  # (start, end) of the newest speech turns, oldest first
        self.turns_total = 0
        self.runs = 0  # clears so far: a new run ending with the last one's counts is still news to the redraw

    def add_turn(self, turn: Mapping[str, Any]) -> None:
        if turn.get("kind") == "turn":
            self.turns = [*self.turns[-(TURNS - 1):], (turn["start"], turn["end"])]
            self.turns_total += 1

    @property
    def version(self) -> tuple[int, int, int]:
        """Changes when an estimate or a turn arrives, or a run begins: the redraw's "anything new?" check (a
        second run ending with the first one's counts had left the first one's curves drawn)."""
        return self.runs, self.total, self.turns_total

    def append(self, estimate: Mapping[str, Any]) -> None:
        """Add an estimate; one that starts another run (another stream, or a seq not after the latest:
        a publisher restarted under `emolive gui --connect`) first clears what the last run left, which
        was drawn beside the new run's with lines joining them."""
        if self.latest is not None and starts_another_run(self.latest, estimate):
            self.clear()
        self._rows[self.total % len(self._rows)] = [estimate["end"], *(estimate[name] for name in DIMENSIONS)]
        self.total += 1
        self.latest = estimate

    def clear(self) -> None:
        self.total, self.latest, self.latest_status, self.turns, self.turns_total = 0, None, None, [], 0
        self.runs += 1

    def rows(self, last_s: float | None = None) -> np.ndarray:
        """Rows oldest first; with `last_s`, only those ending within `last_s` of the newest."""
        n, capacity = self.total, len(self._rows)
        rows = self._rows[:n] if n <= capacity else np.roll(self._rows, -(n % capacity), axis=0)
        if last_s is not None and len(rows):
            rows = rows[rows[:, 0] >= rows[-1, 0] - last_s]
        return rows


def starts_another_run(latest: Mapping[str, Any], estimate: Mapping[str, Any]) -> bool:
    """Whether `estimate` comes from another run than `latest`: another stream id, or a seq that does not
    follow it (each run numbers its estimates from 0)."""
    if estimate.get("stream") != latest.get("stream"):
        return True
    seq, before = estimate.get("seq"), latest.get("seq")
    return seq is not None and before is not None and seq <= before
