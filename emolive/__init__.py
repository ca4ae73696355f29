"""emolive: real-time speech emotion recognition (activation, valence, dominance from a live voice).

The installed package maps the repository's folders to one namespace: `emolive.engine`,
`emolive.gui`, `emolive.plugins`, `emolive.trainer`. This module stays import-light (no numpy,
no torch) so `emolive --help` and `import emolive` are fast.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("emolive")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
