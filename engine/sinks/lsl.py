"""Lab Streaming Layer outlet, so emolive lines up with EEG, eye tracking and the rest of a lab's recordings.

pylsl is an optional extra (`pip install emolive[lsl]`), imported only when this sink is used.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from emolive.engine.schema import DIMENSIONS, SCALE
from emolive.engine.sinks.base import Sink, SinkError

CHANNELS = DIMENSIONS  # channels 0-2, on the schema's SCALE
SPEECH_CHANNEL = "speech"  # channel 3: 1.0 when the window is speech (engine.vad), else 0.0
STREAM_TYPE = "Emotion"
# where liblsl looks for its configuration when $LSLAPICFG names none (its api_config.cpp)
LSL_CONFIG_FILES = (Path("lsl_api.cfg"), Path("~/lsl_api/lsl_api.cfg").expanduser(), Path("/etc/lsl_api/lsl_api.cfg"))
WARNINGS_ONLY = "[log]\nlevel = -1\n"  # liblsl's own log (loguru): -1 is warnings and errors
CLOSE_LINGER_S = 0.5  # what a connected inlet is given on close for the samples still on their way


def _pylsl() -> ModuleType:
    try:
        import pylsl
    except (ImportError, RuntimeError) as exc:  # RuntimeError: pylsl present but its liblsl does not load
        raise SinkError(f"the LSL output needs pylsl ({exc}); install it with `pip install emolive[lsl]`") from None
    if not logging.getLogger("emolive").isEnabledFor(logging.INFO) and not _lab_config():
        pylsl.set_config_content(WARNINGS_ONLY)  # `-q`: liblsl printed its INFO lines all the same
    return pylsl


def _lab_config() -> bool:
    """Whether liblsl has a configuration of the lab's own, whose settings (network, log) must stand:
    emolive quiets liblsl's log only where its configuration would be all defaults anyway."""
    return bool(os.environ.get("LSLAPICFG")) or any(path.is_file() for path in LSL_CONFIG_FILES)


class LslSink(Sink):
    """An irregular-rate float32 outlet, one sample per estimate: activation, valence, dominance (1–7),
    the speech flag (0/1), then one probability per class (`p_<class>`, in the model's order)."""

    def __init__(self, name: str = "emolive", source_id: str = "emolive", class_names: tuple[str, ...] = ()) -> None:
        self._lsl = _pylsl()
        self._class_names = tuple(class_names)
        labels = [(label, f"{SCALE[0]:g}-{SCALE[1]:g}") for label in CHANNELS] + [(SPEECH_CHANNEL, "0/1")]
        labels += [(f"p_{name}", "probability") for name in self._class_names]
        info = self._lsl.StreamInfo(name, STREAM_TYPE, len(labels), self._lsl.IRREGULAR_RATE,
                                    self._lsl.cf_float32, source_id)
        channels = info.desc().append_child("channels")
        for label, unit in labels:
            channel = channels.append_child("channel")
            channel.append_child_value("label", label)
            channel.append_child_value("unit", unit)
        self._outlet = self._lsl.StreamOutlet(info)
        self._last = -float("inf")  # the latest stamp

    def wait_for_subscriber(self, timeout_s: float) -> bool:
        """Until an inlet is connected: a file run read fast had ended before one could resolve the stream."""
        return bool(self._outlet.wait_for_consumers(timeout_s))

    def emit(self, estimate: Mapping[str, Any]) -> None:
        """Stamp the sample with the capture time of the window's last sample, on LSL's clock, never
        before the previous stamp: the two clocks are read anew for each sample (so a stepped wall clock
        is followed), and windows of a file read fast share a wall_end, where the reads' own jitter
        stepped a quarter of the stamps back by microseconds."""
        captured = max(self._lsl.local_clock() - (time.time() - estimate["wall_end"]), self._last)
        self._last = captured
        classes = estimate["classes"]
        sample = [*(estimate[name] for name in CHANNELS), float(estimate["speech"]),
                  *(classes.get(name, 0.0) for name in self._class_names)]
        self._outlet.push_sample(sample, captured)

    def close(self) -> None:
        """A connected inlet gets CLOSE_LINGER_S for the last samples to leave: liblsl sends on its own
        threads, and an outlet destroyed at once lost the last 3 of a fast file run's 102 estimates."""
        if self._outlet is not None and self._outlet.have_consumers():
            time.sleep(CLOSE_LINGER_S)
        self._outlet = None
