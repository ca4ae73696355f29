"""Lab Streaming Layer outlet, so emolive lines up with EEG, eye tracking and the rest of a lab's recordings.

pylsl is an optional extra (`pip install emolive[lsl]`), imported only when this sink is used.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from emolive.engine.sinks.base import Sink, SinkError

CHANNELS = ("activation", "valence", "dominance")
STREAM_TYPE = "Emotion"


def _pylsl() -> ModuleType:
    try:
        import pylsl
    except (ImportError, RuntimeError) as exc:  # RuntimeError: pylsl present but its liblsl does not load
        raise SinkError(f"the LSL output needs pylsl ({exc}); install it with `pip install emolive[lsl]`") from None
    return pylsl


class LslSink(Sink):
    """An irregular-rate float32 outlet of 3 channels labelled activation/valence/dominance (1–7 scale)."""

    def __init__(self, name: str = "emolive", source_id: str = "emolive") -> None:
        self._lsl = _pylsl()
        info = self._lsl.StreamInfo(name, STREAM_TYPE, len(CHANNELS), self._lsl.IRREGULAR_RATE,
                                    self._lsl.cf_float32, source_id)
        channels = info.desc().append_child("channels")
        for label in CHANNELS:
            channel = channels.append_child("channel")
            channel.append_child_value("label", label)
            channel.append_child_value("unit", "1-7")
        self._outlet = self._lsl.StreamOutlet(info)

    def emit(self, estimate: Mapping[str, Any]) -> None:
        """Stamp the sample with the capture time of the window's last sample, on LSL's clock."""
        captured = self._lsl.local_clock() - (time.time() - estimate["wall_end"])
        self._outlet.push_sample([estimate[name] for name in CHANNELS], captured)

    def close(self) -> None:
        self._outlet = None
