"""The front end's compiled loops: machine code built ahead of time where it is current, numba's JIT otherwise.

Why two ways to one result: importing numba and loading its cached machine code costs ~130 MB of
resident memory, more than half of a running `emolive stream`, and ~0.5 s of start-up. The same
kernels compiled ahead of time by numba (`emolive.engine.features.aot`, at install) form a small
extension module that needs no numba at run time. The loops are written once, as plain Python
functions marked `@kernel`; a kernel resolves on its first call:

- to the extension's function of the same name, when the extension was built from exactly these
  source files (its digest of them matches) and this CPU runs its code (`cpu_runs_build_target`);
- else to a numba JIT dispatcher (numba is imported then, and every kernel of every module becomes
  one, so kernels calling kernels compile against each other).

`EMOLIVE_KERNELS=jit` skips the extension (measurements of the JIT, and `warm`, use it).
Only the entry points called from Python are exported; helpers called by other kernels are
compiled into them.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).parent
SOURCES = ("fbank.py", "normalise.py", "pitch_nccf.py", "pitch_track.py")  # every module with a @kernel
EXTENSION = "emolive.engine.features._kernels"
MODE_ENV = "EMOLIVE_KERNELS"
X86_64 = frozenset({"x86_64", "amd64"})
V3_FLAGS = frozenset({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"})  # x86-64-v3; lzcnt is "abm"

_registry: list[Kernel] = []


class Kernel:
    """A compiled loop: `py_func` and its numba options; calling it runs the resolved machine code."""

    def __init__(self, py_func: Callable[..., Any], options: dict[str, Any]) -> None:
        self.py_func, self.options = py_func, options
        self.__name__, self.__doc__ = py_func.__name__, py_func.__doc__
        self._impl: Callable[..., Any] | None = None  # what a call runs, once resolved
        self._jit: Callable[..., Any] | None = None  # numba's dispatcher, once made

    def __call__(self, *args: Any) -> Any:
        if self._impl is None:
            _resolve()
            if self._impl is None:  # not exported (a helper called from Python): only numba runs it
                jit_all()
        try:
            return self._impl(*args)  # type: ignore[misc]
        except OSError as err:  # no kernel does I/O: numba saving what it just compiled, before running it
            if self._jit is None or not _numba_cache["usable"]:
                raise
            _without_cache(err)
            return self._impl(*args)  # type: ignore[misc]

    @property
    def module(self) -> ModuleType:
        return sys.modules[self.py_func.__module__]


def kernel(fastmath: bool = False) -> Callable[[Callable[..., Any]], Kernel]:
    """Mark a function as a front-end kernel (numba's nopython subset; fastmath as numba's flag)."""
    def mark(func: Callable[..., Any]) -> Kernel:
        k = Kernel(func, {"fastmath": fastmath})
        _registry.append(k)
        return k
    return mark


def registered() -> dict[str, Kernel]:
    """Every kernel of every kernel module (SOURCES, imported here), by name."""
    for name in SOURCES:
        importlib.import_module(f"{__package__}.{Path(name).stem}")
    return {k.__name__: k for k in _registry}


def build_target() -> str:
    """The CPU model the extension is compiled for ("": LLVM's generic CPU of this platform).

    On x86-64, x86-64-v3 (AVX2, FMA: x86 CPUs from 2013-2015 on) measured as fast as numba's JIT
    for the host (1498x against 1515x real time, one core); the portable x86-64 baseline lost
    10 % (1370x). A CPU without them could not even import the extension, so
    `cpu_runs_build_target` tells it apart before the import and it gets the JIT.
    """
    return "x86-64-v3" if platform.machine().lower() in X86_64 else ""


def cpu_runs_build_target(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU runs code built for `build_target()` (an x86 CPU whose flags cannot be read: no)."""
    if build_target() != "x86-64-v3":
        return True
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as info:
            flags = next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), [])
    except OSError:
        return False
    return V3_FLAGS <= set(flags)


def source_digest() -> str:
    """SHA-256 over the kernel modules' bytes: an extension built from other sources is stale."""
    h = hashlib.sha256()
    for name in SOURCES:
        h.update(name.encode() + b"\0" + (HERE / name).read_bytes())
    return h.hexdigest()


def source_digest_number() -> int:
    """`source_digest` as the int64 the extension's `source_digest()` returns (its first 60 bits)."""
    return int(source_digest()[:15], 16)


@functools.cache
def extension() -> ModuleType | None:
    """The ahead-of-time built kernels, if present, current and runnable here; else None."""
    if os.environ.get(MODE_ENV, "auto") == "jit":
        return None
    if not cpu_runs_build_target():
        return None
    try:
        built = importlib.import_module(EXTENSION)
    except ImportError:
        return None
    return built if built.source_digest() == source_digest_number() else None


_numba_cache = {"usable": True}  # whether numba may keep compiled kernels on disk (_without_cache)


def jit_all() -> None:
    """Every kernel as a numba dispatcher, bound in its module too (kernels call kernels by global name),
    its machine code cached on disk where numba can write (else compiled at each start)."""
    from numba import njit

    for k in _registry:
        if k._jit is None:
            try:
                k._jit = njit(cache=_numba_cache["usable"], **k.options)(k.py_func)
            except RuntimeError as err:  # "no locator available": no folder numba may write its cache in
                _without_cache(err)
                return
            setattr(k.module, k.__name__, k._jit)
        k._impl = k._jit


def _without_cache(err: Exception) -> None:
    """Compile every kernel again without numba's disk cache, saying so once. A read-only home and
    package folder (another user's install) or a full disk had made every kernel call fail: a
    traceback in `stream`, and each file of a `score` batch called unreadable."""
    import logging

    _numba_cache["usable"] = False
    logging.getLogger(__name__).warning("numba cannot keep its compiled kernels (%s): they are compiled at each "
                                        "start instead (set NUMBA_CACHE_DIR to a writable folder to keep them)",
                                        " ".join(str(err).split())[:200])
    for k in _registry:
        k._jit = None
    jit_all()


def _resolve() -> None:
    """Bind every kernel: to the extension's exports where it serves, else to numba's JIT."""
    built = extension()
    if built is None:
        jit_all()
        return
    for k in _registry:
        k._impl = getattr(built, k.__name__, None)
