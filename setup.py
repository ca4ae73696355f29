"""setuptools hook: a wheel carries the front end's kernels compiled ahead of time (engine/features/aot.py).

Everything else about the package is in pyproject.toml. The kernels are machine code, so the wheel
is tagged for this platform. A build that cannot compile them (no C compiler) still gives a
working wheel: the engine then compiles the same kernels with numba on first use.
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def import_from_sources() -> None:
    """Make `emolive.engine` importable from the repository folders before it is installed
    (pyproject's package-dir maps emolive.engine to engine/)."""
    for name, folder in (("emolive", "emolive"), ("emolive.engine", "engine")):
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(ROOT / folder)]
            sys.modules[name] = package


class BuildWithKernels(build_py):
    """build_py, then the kernels compiled into the built package (editable installs: `make setup`)."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        import_from_sources()
        from emolive.engine.features.aot import build

        try:
            path = build(Path(self.build_lib) / "emolive" / "engine" / "features")
        except Exception as exc:  # noqa: BLE001 - any compiler failure leaves the JIT path, which works
            print(f"warning: the front end's kernels were not compiled ahead of time ({exc}); "
                  "emolive will compile them with numba on first use", file=sys.stderr)
        else:
            print(f"front-end kernels compiled ahead of time: {path}")


class PlatformDistribution(Distribution):
    def has_ext_modules(self) -> bool:
        return True  # the kernels are machine code: tag the wheel for this platform


setup(cmdclass={"build_py": BuildWithKernels}, distclass=PlatformDistribution)
