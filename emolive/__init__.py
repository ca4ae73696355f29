"""emolive: real-time speech emotion recognition (activation, valence, dominance from a live voice).

    >>> import emolive
    >>> result = emolive.analyze("recording.wav")           # doctest: +SKIP
    >>> result.whole["activation"], len(result.windows)      # doctest: +SKIP

The installed package maps the repository's folders to one namespace: `emolive.engine`,
`emolive.gui`, `emolive.plugins`, `emolive.trainer`. This module stays import-light (no numpy,
no torch): the public names below are loaded on first use, so `emolive --help` and `import
emolive` are fast.
"""
from __future__ import annotations

import os
from importlib import import_module
from typing import TYPE_CHECKING, Any

# onnxruntime 1.29 and later record telemetry on every platform (ProcessInfo events with the program's
# path, queued in ~/.cache/Microsoft/DeveloperTools/.onnxruntime for upload, 2,223 of them here): off,
# unless the user set it. Every emolive module imports this one first, before onnxruntime makes its
# environment (where the variable is read).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from emolive.engine.defaults import package_version  # noqa: E402  (after the setting, which must come first)
from emolive.engine.imports import import_engine  # noqa: E402

__version__ = package_version()

_PUBLIC = {  # name -> module that defines it
    "analyze": "emolive.api", "stream": "emolive.api", "Analysis": "emolive.api", "Analyses": "emolive.api",
    "PartialAnalysis": "emolive.api", "MicrophoneOptions": "emolive.engine.sources.microphone",
    "load_model": "emolive.engine.plugin", "ModelPlugin": "emolive.engine.plugin",
    "Prediction": "emolive.engine.plugin",
    "EmoliveError": "emolive.engine.errors",
    "Estimate": "emolive.engine.schema", "Turn": "emolive.engine.schema", "Status": "emolive.engine.schema",
    "SCHEMA_VERSION": "emolive.engine.schema",
}

__all__ = ["__version__", *_PUBLIC]

if TYPE_CHECKING:
    from emolive.api import Analyses, Analysis, PartialAnalysis, analyze, stream
    from emolive.engine.errors import EmoliveError
    from emolive.engine.plugin import ModelPlugin, Prediction, load_model
    from emolive.engine.schema import SCHEMA_VERSION, Estimate, Status, Turn


def __getattr__(name: str) -> Any:
    """Import the module behind a public name on first use (PEP 562); the engine's, whole."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'emolive' has no attribute {name!r}")
    module = _PUBLIC[name]
    if module in ("emolive.api", "emolive.engine.plugin"):
        import_engine("emolive.api")  # whole: a Ctrl-C mid-import had left numpy half made for the process
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
