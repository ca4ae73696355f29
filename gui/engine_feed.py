"""The engine in-process: model, source and Runner on one worker thread, estimates out through Qt signals.

The Runner only ever calls `SignalSink.emit`, which posts an event to the GUI thread's queue and
returns: a busy or frozen GUI makes that queue longer, never the engine slower.
"""
from __future__ import annotations

import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emolive.engine.cli import DEMO_CLIP, USER_ERRORS
from emolive.engine.plugin import ModelPlugin, load_model
from emolive.engine.runner import OFFLINE_BLOCK_SIZE, Runner, RunStats
from emolive.engine.sinks.base import Sink
from emolive.engine.sources import DEFAULT_BLOCK_SIZE, AudioSource, FileSource, MicrophoneOptions, open_source
from emolive.gui.feed import FeedSignals
from emolive.gui.level import LevelTap

STOP_TIMEOUT_S = 5.0  # Runner.stop() takes effect within 0.1 s plus a model call; loading a model can take seconds


@dataclass(frozen=True)
class RunConfig:
    """What the controls chose."""

    source: str | None = None  # open_source's spec; None: the microphone, or the demo clip where there is none
    microphone: MicrophoneOptions = MicrophoneOptions()  # device, channels, reconnect (when source is None)
    model: str = "student"
    window_s: float = 3.0
    hop_s: float = 0.5
    realtime: bool = True  # files play at real time, like a voice; False: as fast as possible (screenshots)

    @property
    def live(self) -> bool:
        """The Runner's live mode (newest window only when behind), as in `emolive stream`."""
        return self.realtime or self.source is None


class SignalSink(Sink):
    """Hands every payload to the GUI thread as a queued signal; counts what it sent."""

    def __init__(self, signals: FeedSignals) -> None:
        self._signals = signals
        self.sent = 0

    def emit(self, estimate: Mapping[str, Any]) -> None:
        self._signals.estimate.emit(estimate)
        self.sent += 1

    def status(self, status: Mapping[str, Any]) -> None:
        self._signals.status.emit(status)

    def turn(self, turn: Mapping[str, Any]) -> None:
        self._signals.turn.emit(turn)

    def close(self) -> None:
        """Nothing to release: the signals belong to the feed."""


class EngineFeed:
    """Runs `config` once on a daemon thread; `stop()` from the GUI thread ends it and joins it."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.signals = FeedSignals()
        self.sink = SignalSink(self.signals)
        self._thread = threading.Thread(target=self._run, name="emolive-engine", daemon=True)
        self._stopping = threading.Event()
        self._runner: Runner | None = None
        self._tap: LevelTap | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        self._stopping.set()
        runner = self._runner  # set by the thread before it checks _stopping, so one of the two sees the other
        if runner is not None:
            runner.stop()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def level_dbfs(self) -> float | None:
        return self._tap.level_dbfs if self._tap is not None else None

    def _run(self) -> None:
        stats = None
        try:
            stats = self._run_engine()
        except USER_ERRORS as exc:
            self.signals.error.emit(" ".join(str(exc).split()))
        except Exception as exc:  # a bug: the traceback goes to the console, one line to the window
            traceback.print_exc()
            self.signals.error.emit(f"internal error ({type(exc).__name__}: {exc}); the console has the details")
        finally:
            self.signals.finished.emit(stats)

    def _run_engine(self) -> RunStats | None:
        cfg = self.config
        model = load_model(cfg.model)
        block_size = DEFAULT_BLOCK_SIZE if cfg.live else OFFLINE_BLOCK_SIZE
        with open_source(cfg.source, fallback=DEMO_CLIP, microphone=cfg.microphone, realtime=cfg.realtime,
                         block_size=block_size) as source:
            self._tap = LevelTap(source)
            self._runner = Runner(self._tap, model, [self.sink], window_s=cfg.window_s, hop_s=cfg.hop_s,
                                  live=cfg.live)
            if self._stopping.is_set():
                return None
            self.signals.started.emit(describe(source, model, demo=cfg.source is None))
            return self._runner.run()


def describe(source: AudioSource, model: ModelPlugin, *, demo: bool) -> str:
    """What is playing, in words, saying so when the demo clip stands in for a missing microphone."""
    stand_in = demo and isinstance(source, FileSource)
    fallback = " (no microphone found: playing the bundled demo clip)" if stand_in else ""
    return f"{source.description}{fallback} · model {model.name} on {model.device}"
