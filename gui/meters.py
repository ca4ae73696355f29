"""Small read-outs beside the plots: input level, speech light, engine status."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtWidgets import QLabel, QProgressBar

from emolive.engine.schema import DIMENSIONS, end_text, printable

METER_FLOOR_DBFS = -60  # quieter than a quiet room through a laptop microphone


class LevelMeter(QProgressBar):
    """RMS level of the newest audio block in dBFS, -60 to 0."""

    def __init__(self) -> None:
        super().__init__()
        self.setRange(METER_FLOOR_DBFS, 0)
        self.setMinimumWidth(160)
        self.set_level(None)

    def set_level(self, dbfs: float | None) -> None:
        """None: no audio in this process (a ZeroMQ stream, or nothing running)."""
        if dbfs is None:
            self.setValue(METER_FLOOR_DBFS)
            self.setFormat("input level: no audio")
            return
        self.setValue(round(min(0.0, max(float(METER_FLOOR_DBFS), dbfs))))
        self.setFormat(f"input {dbfs:.0f} dBFS" if dbfs > METER_FLOOR_DBFS else "input silent")


class SpeechLight(QLabel):
    """Green while the newest window is speech; grey otherwise (its estimate is flagged, not hidden)."""

    STYLES = {True: ("speech", "#2ca02c"), False: ("no speech", "#9e9e9e"), None: ("no input", "#d0d0d0")}

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumWidth(90)
        self.set_speech(None)

    def set_speech(self, speech: bool | None) -> None:
        text, colour = self.STYLES[speech]
        self.setText(text)
        self.setStyleSheet(f"background: {colour}; color: white; padding: 3px 8px; border-radius: 4px;")


def avd_text(estimate: Mapping[str, Any] | None, window_s: float | None) -> str:
    """The newest activation, valence and dominance as numbers; before the first, how long it takes."""
    if estimate is None:
        wait = f"first estimate after {window_s:g} s of audio" if window_s else "waiting for the first estimate"
        return f"A – · V – · D – ({wait})"
    return " · ".join(f"{name[0].upper()} {estimate[name]:.2f}" for name in DIMENSIONS)


def status_text(estimate: Mapping[str, Any] | None, status: Mapping[str, Any] | None) -> str:
    """One line from the newest estimate and status; parts not yet known are left out."""
    parts = []
    if estimate is not None:
        parts += [f"model {printable(estimate['model'], 80)}", f"latency {estimate['latency_ms']:.0f} ms",
                  f"estimate #{estimate['seq']} at {estimate['end']:.1f} s"]
    if status is not None:
        parts += [f"dropped blocks {status['dropped_blocks']}", f"skipped windows {status['skipped_windows']}",
                  f"lag {status['lag_s']:.2f} s"]
        gaps = status.get("device_gaps")  # a status extra: older publishers and other sources send none
        if isinstance(gaps, int) and gaps > 0 and isinstance(status.get("gap_s"), float):
            parts.append(f"device lost and back {gaps}x ({status['gap_s']:.1f} s)")
        ended = end_text(status)  # also status extras: a quiet stream and a finished one looked alike
        if ended:
            parts.append(f"stream {ended}")
    return " · ".join(parts) or "waiting for the first estimate"
