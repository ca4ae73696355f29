"""The trainer layer's one user-error class, caught once by `trainer`'s CLI (trainer/cli.py).

Raised where the person running the trainer can cause the error and fix it: the data (a manifest,
an MSP-Podcast folder, an audio file), the arguments, a missing or unwritable path. Its text is one
line that names the fix. Everything else raised while training is a bug and stays a traceback.
It is a ValueError too, as the engine's BundleError and WindowError are, so code that checked
values with `except ValueError` before this class existed keeps working.
"""
from __future__ import annotations

from emolive.engine.errors import EmoliveError


class TrainerError(EmoliveError, ValueError):
    """Bad data, arguments or paths given to the trainer: the message says what to change."""
