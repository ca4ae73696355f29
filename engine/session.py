"""One stream session, the same for `emolive stream`, `emolive gui` and `emolive.stream`.

What a run reads is decided here once: the source a user named, or the microphone, or — where
there is none and no device was named — the bundled demo clip at real time, said so in the
description; whether the run is live (the microphone, or any source with `realtime`); the block
size that follows from that (100 ms live, 1 s reads offline); and the Runner built from the same
frozen `StreamConfig`. The stream options (`--source`, the microphone's, `--model`, `--window`,
`--hop`) are declared once, in `add_stream_options`.

Light at import (argparse and dataclasses only): `emolive --help` builds its parsers from here,
and the engine proper is imported by the functions that open a stream.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from emolive.engine.closing import Closing
from emolive.engine.defaults import DEFAULT_HOP_S, DEFAULT_MODEL, DEFAULT_WINDOW_S
from emolive.engine.errors import EmoliveError
from emolive.engine.plugin import ModelPlugin, load_model, registered_models

if TYPE_CHECKING:
    from collections.abc import Callable

    from emolive.engine.runner import Runner, RunStats
    from emolive.engine.sinks import Sink
    from emolive.engine.sources import AudioSource, MicrophoneOptions

DEMO_CLIP = Path(__file__).resolve().parent / "data" / "demo.flac"
DEMO_NOTE = " (no microphone found: playing the bundled demo clip)"
USER_ERRORS = (EmoliveError, FileNotFoundError)  # every layer's user-error class derives from EmoliveError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamConfig:
    """What one stream reads and how it is windowed; built once (`from_args`, or the GUI's controls)."""

    source: str | None = None  # open_source's spec; None: the microphone, or the demo clip where there is none
    microphone: MicrophoneOptions | None = None  # device, channels, reconnect (when source is None); None: defaults
    model: str = DEFAULT_MODEL
    window_s: float = DEFAULT_WINDOW_S
    hop_s: float = DEFAULT_HOP_S
    realtime: bool = False  # pace files at real time and treat them as live
    raw_format: str = "f32le"  # --source -: raw PCM's sample format, rate and channels
    raw_rate: float = 16000
    raw_channels: int = 1
    stream_id: str = "default"

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> StreamConfig:
        """The config of `emolive stream`'s parsed arguments; raw PCM's options only with `--source -`,
        whose own defaults fill those not given."""
        raw = {"raw_format": args.raw_format, "raw_rate": args.rate, "raw_channels": args.channels}
        given = [f"--{flag}" for flag, value in zip(("raw-format", "rate", "channels"), raw.values())
                 if value is not None]
        if given and args.source != "-":
            verb = "describes" if len(given) == 1 else "describe"
            others = "a file or a pipeline" if args.source else "the microphone"
            raise EmoliveError(f"{', '.join(given)} {verb} raw PCM on stdin (--source -); {others} says its own")
        return cls(source=args.source, microphone=microphone_options(args), model=args.model, window_s=args.window,
                   hop_s=args.hop, realtime=args.realtime, stream_id=args.stream_id,
                   **{name: value for name, value in raw.items() if value is not None})

    @property
    def live(self) -> bool:
        """The Runner's live mode (newest window only when behind): the microphone, or a paced source."""
        return self.realtime or self.source is None

    @property
    def block_size(self) -> int:
        from emolive.engine.runner import OFFLINE_BLOCK_SIZE
        from emolive.engine.sources import DEFAULT_BLOCK_SIZE

        return DEFAULT_BLOCK_SIZE if self.live else OFFLINE_BLOCK_SIZE


class Stream(Closing):
    """An opened source with what it is in words; `runner` feeds it to a model. `close()` releases it."""

    def __init__(self, config: StreamConfig, source: AudioSource, description: str, stood_in: bool = False) -> None:
        """`stood_in`: the demo clip plays where the microphone asked for is not there."""
        self.config, self.source, self.description, self.stood_in = config, source, description, stood_in

    def runner(self, model: ModelPlugin, sinks: Sequence[Sink], *, reading: AudioSource | None = None) -> Runner:
        """The Runner for this stream; `reading` is what it reads when that wraps `source` (the GUI's level meter)."""
        from emolive.engine.runner import Runner

        cfg = self.config
        return Runner(reading or self.source, model, sinks, window_s=cfg.window_s, hop_s=cfg.hop_s, live=cfg.live,
                      stream_id=cfg.stream_id)

    def close(self) -> None:
        self.source.close()


def open_stream(config: StreamConfig, *, notify: Callable[[str], None] | None = None) -> Stream:
    """Open the config's source (the demo clip where no microphone is there); `notify` hears of a device lost."""
    from emolive.engine.sources import FileSource, MicrophoneOptions, open_source

    source = open_source(config.source, fallback=DEMO_CLIP, microphone=config.microphone or MicrophoneOptions(),
                         realtime=config.realtime, raw_format=config.raw_format, raw_rate=config.raw_rate,
                         raw_channels=config.raw_channels, notify=notify, block_size=config.block_size)
    stood_in = config.source is None and isinstance(source, FileSource)
    return Stream(config, source, source.description + (DEMO_NOTE if stood_in else ""), stood_in)


def load_model_one_thread(model: str) -> ModelPlugin:
    """The model, with torch (if the model uses it) on one thread: one window, or one batch of windows, is far
    too small a job for intra-op threads; on a busy 2-core machine torch's pool made the demo clip 6x slower,
    and several scoring jobs are faster as one thread each than contending for cores."""
    from emolive.engine.imports import import_engine

    started = time.perf_counter()
    import_engine()
    plugin = load_model(model)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    log.debug("model %s loaded in %.2f s: %s on %s, classes %s", plugin.name, time.perf_counter() - started,
              getattr(plugin, "path", "built in"), getattr(plugin, "device", "cpu"), ", ".join(plugin.meta.class_names))
    return plugin


def summary(stats: RunStats) -> str:
    """A finished run in one line: estimates, audio, and what was skipped, dropped or lost."""
    times = f"{stats.device_gaps} time{'s' if stats.device_gaps > 1 else ''}"
    gaps = f"; device lost and back {times}, {stats.gap_s:.1f} s in all" if stats.device_gaps else ""
    return (f"{stats.estimates} estimates from {stats.audio_s:.2f} s of audio; {stats.skipped_windows} windows "
            f"skipped, {stats.dropped_blocks} audio blocks dropped{gaps}")


def add_stream_options(parser: argparse.ArgumentParser, *, source_help: str) -> None:
    """--source, the microphone's options, --model, --window and --hop: `stream` and `gui` declare them here."""
    parser.add_argument("--source", help=source_help)
    parser.add_argument("--device", help="microphone by index or name substring (see `emolive devices`)")
    parser.add_argument("--channel", type=channel_number, action="append", metavar="N",
                        help="1-based channel of the microphone, a file or stdin to use; repeat to mix several "
                        "(default: all channels of a file, stdin, or a mono or stereo device; else channel 1)")
    parser.add_argument("--reconnect", action="store_true", help="when the microphone disappears, wait for it to "
                        "come back instead of ending the run")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"one of {', '.join(sorted(registered_models()))}, "
                        "or a model bundle directory")
    parser.add_argument("--window", type=float, default=DEFAULT_WINDOW_S,
                        help="window length in seconds")
    parser.add_argument("--hop", type=float, default=DEFAULT_HOP_S,
                        help="seconds between estimates")


def microphone_options(args: argparse.Namespace) -> MicrophoneOptions:
    """--device, --channel and --reconnect as the microphone's options."""
    from emolive.engine.sources import MicrophoneOptions

    return MicrophoneOptions(args.device, tuple(args.channel or ()), args.reconnect)


def channel_number(text: str) -> int:
    """argparse type: a channel number, counted from 1 as on the device's labels."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: channels are numbered from 1")
    return int(text)
