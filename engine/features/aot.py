"""Build the front end's kernels ahead of time: `python -m emolive.engine.features.aot`.

numba's pycc compiles the kernels that Python calls (`exports()`, with their exact argument types)
into the extension module `emolive.engine.features._kernels`, beside the sources; `make setup`
runs this and setup.py does it for wheels. Why, and how the engine chooses it: kernels.py.

The CPU it is built for: kernels.build_target. numba marks pycc as pending deprecation (numba is
pinned below 0.69); where a numba without it is installed, the build fails and the JIT serves.
"""
from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from typing import Any

from emolive.engine.features.kernels import EXTENSION, HERE, build_target, jit_all, registered, source_digest_number

EXTENSION_NAME = EXTENSION.rsplit(".", 1)[1]  # pycc wants the module's own name; its package is where it is put


def exports() -> dict[str, Any]:
    """Kernel name -> numba signature of every kernel Python calls (the types callers pass)."""
    from numba import types as t

    from emolive.engine.features.pitch_nccf import Candidates, NccfGeometry, NccfScratch
    from emolive.engine.features.pitch_track import PathCosts, PathRing

    f4, f8, i8, c16, b1 = t.float32, t.float64, t.int64, t.complex128, t.boolean
    vec, mat = (lambda d: d[::1]), (lambda d: d[:, ::1])
    candidates = t.NamedTuple((mat(f8), mat(f8), vec(i8), vec(f8)), Candidates)
    geometry = t.NamedTuple((i8, i8, i8, i8, i8, f8), NccfGeometry)
    scratch = t.NamedTuple((vec(f4), vec(f8), vec(f8)), NccfScratch)
    ring = t.NamedTuple((vec(f8), mat(f8), mat(f8), mat(i8), vec(f8), vec(i8), vec(f8)), PathRing)
    costs = t.NamedTuple((i8, *[f8] * 8), PathCosts)
    return {
        "windowed_frames": t.void(vec(f4), i8, f8, vec(f8), mat(f8)),
        "mel_log_energies": t.void(mat(c16), mat(f8), vec(i8), vec(i8), f8, mat(f4)),
        "_normalise": t.void(mat(f4), i8, i8, i8, f8, f8, f8, mat(f8), vec(f8)),
        "decimate_into": t.void(vec(f4), i8, i8, i8, vec(f8), vec(f8)),
        "frame_candidates": t.void(vec(f8), i8, i8, i8, geometry, scratch, candidates),
        "viterbi_advance": i8(candidates, i8, b1, ring, costs, vec(f8), vec(f8)),
        "hold_and_delta": mat(f4)(vec(f8), vec(f8), f8, b1, mat(f8), mat(f8), vec(f8)),
    }


def build(out_dir: Path = HERE) -> Path:
    """Compile `exports()` and the sources' digest into `out_dir`; the extension's path."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba.pycc's pending-deprecation notice
        from numba.pycc import CC

        kernels = registered()
        jit_all()  # kernels call kernels by global name: those names must be numba's while compiling
        cc = CC(EXTENSION_NAME, source_module=__name__)
        cc.output_dir, cc.target_cpu = str(out_dir), build_target()
        for name, signature in exports().items():
            cc.export(name, signature)(kernels[name].py_func)
        digest = source_digest_number()
        cc.export("source_digest", "i8()")(lambda: digest)
        cc.compile()
    return Path(out_dir) / cc.output_file


if __name__ == "__main__":
    start = time.perf_counter()
    path = build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
    print(f"front-end kernels compiled ahead of time ({build_target() or 'generic CPU'}) in "
          f"{time.perf_counter() - start:.0f} s: {path}")
