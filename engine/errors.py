"""The one base class of every error a user can cause, so a program embedding emolive catches one name.

Each layer keeps its own class (AudioSourceError, SinkError, BundleError, WindowError), and each
derives from `EmoliveError`; the message is one line that says what to do. Anything else raised
from emolive is a bug and stays a traceback.
"""
from __future__ import annotations


class EmoliveError(Exception):
    """Bad input, a missing device or file, a busy port, a mismatched model: the text names the fix."""
