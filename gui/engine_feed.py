"""The engine in-process: model, source and Runner on one worker thread, estimates out through Qt signals.

The Runner only ever calls `SignalSink.emit`, which posts an event to the GUI thread's queue and
returns: a busy or frozen GUI makes that queue longer, never the engine slower.
"""
from __future__ import annotations

import threading
import traceback
from collections.abc import Mapping
from typing import Any

from emolive.engine.plugin import ModelPlugin
from emolive.engine.runner import Runner, RunStats
from emolive.engine.schema import printable
from emolive.engine.session import USER_ERRORS, StreamConfig, load_model_one_thread, open_stream
from emolive.engine.sinks.base import Sink
from emolive.gui.feed import FeedSignals
from emolive.gui.level import SILENCE_DBFS, LevelTap

STOP_TIMEOUT_S = 5.0  # Runner.stop() takes effect within 0.1 s plus a model call; loading a model can take seconds


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
    """Runs `config` (the controls' choice) once on a daemon thread; `stop()` from the GUI thread ends it, joins it."""

    def __init__(self, config: StreamConfig) -> None:
        self.config = config
        self.signals = FeedSignals()
        self.sink = SignalSink(self.signals)
        self._thread = threading.Thread(target=self._run, name="emolive-engine", daemon=True)
        self._stopping = threading.Event()
        self._runner: Runner | None = None
        self._tap: LevelTap | None = None
        self.model: ModelPlugin | None = None  # once loaded: a recording is checked against its bundle

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

    def _notify(self, message: str) -> None:
        """A microphone lost or back (--reconnect), said in the window; the meter falls to silence until
        audio comes again (it had gone on showing the last block's level, with "running", for the whole
        of an outage)."""
        if self._tap is not None:
            self._tap.level_dbfs = SILENCE_DBFS
        self.signals.notice.emit(message)

    def _run_engine(self) -> RunStats | None:
        cfg = self.config
        model = self.model = load_model_one_thread(cfg.model)  # torch (a torch model's) on one thread, as `stream`
        with open_stream(cfg, notify=self._notify) as stream:
            self._tap = LevelTap(stream.source)
            self._runner = stream.runner(model, [self.sink], reading=self._tap)
            if self._stopping.is_set():
                return None
            # a third party's model name, a file's name: escaped, as the status bar and the CLI show them
            self.signals.started.emit(printable(f"{stream.description} · model {model.name} on {model.device}", 300))
            return self._runner.run()
