"""The engine's modules imported whole, a Ctrl-C held until they are.

An import cut short cannot be taken again: a Ctrl-C in the middle of numpy's or onnxruntime's import
left them half made, and every later call in the process failed ("module 'numpy' has no attribute
'void'", "cannot load module more than once per process"); a notebook's kernel was lost, and the
commands said "model student could not be loaded: ImportError". Light: the standard library only.
"""
from __future__ import annotations

import signal
import threading
from importlib import import_module

# what the first analysis imports: the extension modules, the runner, the default model's runtime
ENGINE = ("numpy", "soundfile", "soxr", "onnxruntime", "emolive.engine.runner", "emolive.plugins.student.plugin")


def import_engine(*more: str) -> None:
    """ENGINE and `more` imported whole (import_whole)."""
    import_whole((*ENGINE, *more))


def import_whole(modules: tuple[str, ...]) -> None:
    """Import `modules` with Ctrl-C held until they are done, then raised. Only where Python's own
    SIGINT handler is in place, on the main thread: elsewhere no handler can be set, or the program
    has its own."""
    hold = threading.current_thread() is threading.main_thread() and \
        signal.getsignal(signal.SIGINT) is signal.default_int_handler
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum)) if hold else None
    try:
        for module in modules:
            import_module(module)
    finally:
        if hold:
            signal.signal(signal.SIGINT, previous)
    if held:
        raise KeyboardInterrupt
