"""Defaults that command lines show in --help, in a module that imports nothing heavy.

`emolive --help` must not pay for numpy, zmq or torch, so the parsers take their defaults from
here; the modules that use them (the ZeroMQ sink, the raw PCM source) import them from here too.
"""

from importlib.metadata import PackageNotFoundError, version

DEFAULT_MODEL = "student"  # the model every command, the API and the GUI use unless told otherwise
DEFAULT_ADDRESS = "tcp://127.0.0.1:5556"
RAW_SAMPLE_FORMATS = {"f32le": "<f4", "s16le": "<i2"}  # --raw-format name -> numpy dtype string
SCORE_PER = ("file", "window", "turn")  # `emolive score --per`: a row per file, window or speech turn
OSC_TARGET = "127.0.0.1:9000"  # `--osc` without a value: a receiver on this machine
WEBSOCKET_ADDRESS = "127.0.0.1:8765"  # `--websocket` without a value: loopback only
DEFAULT_WINDOW_S = 3.0  # seconds of audio per estimate (stream, gui, score, the API, the Runner)
DEFAULT_HOP_S = 0.5  # seconds between estimates


def package_version() -> str:
    """emolive's version as installed (package metadata), for --version and provenance."""
    try:
        return version("emolive")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"
