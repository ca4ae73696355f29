"""Run every kernel of the live path once: `python -m emolive.engine.features.warm`.

Where the kernels run on numba's JIT (kernels.py: no ahead-of-time build, or EMOLIVE_KERNELS=jit),
they are `cache=True`, so numba keeps machine code beside the sources (their __pycache__); without
this the first `emolive stream` on the JIT spends ~9 s compiling before its first estimate.
`make setup` runs it with EMOLIVE_KERNELS=jit, and again whenever a feature module changes.
"""
from __future__ import annotations

import time

import numpy as np

from emolive.engine.features.config import FrontEndConfig
from emolive.engine.features.frontend import compute
from emolive.engine.features.normalise import StreamNormaliser, StreamNormConfig


def warm() -> float:
    """Run the front end (fbank, FFT, pitch) and the stream normaliser on 1.5 s of a voiced tone; seconds taken."""
    start = time.perf_counter()
    cfg = FrontEndConfig()
    t = np.arange(int(1.5 * cfg.sample_rate)) / cfg.sample_rate
    tone = (0.3 * np.sin(2 * np.pi * 150 * t) + 0.01 * np.random.default_rng(0).standard_normal(t.size))
    features = compute(tone.astype(np.float32), cfg)
    columns = cfg.num_features - 2  # log mel energies + log F0, as bundles normalise them
    norm = StreamNormConfig(prior_mean=(0.0,) * columns, prior_var=(1.0,) * columns, columns=columns,
                            voicing_column=cfg.num_features - 1)
    StreamNormaliser(norm).push(features)
    return time.perf_counter() - start


if __name__ == "__main__":
    print(f"numba kernels compiled and cached in {warm():.1f} s")
