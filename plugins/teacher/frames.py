"""The front end's frame grid, which every pretrained encoder's frames are put on: frame k covers
samples [320 k, 320 k + 400) (25 ms window, 20 ms hop, snip edges), so embeddings and MFB+F0 have
the same count and fuse or swap frame by frame."""
from __future__ import annotations

from typing import Sequence

import numpy as np

FRAME_LENGTH, FRAME_SHIFT = 400, 320


def num_frames(samples: int) -> int:
    """Frames of a signal of this length: the front end's count, 1 + (n - 400) // 320, or 0."""
    return 0 if samples < FRAME_LENGTH else 1 + (samples - FRAME_LENGTH) // FRAME_SHIFT


def fuse(streams: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate embedding streams of one utterance frame by frame (Table 3's fusion)."""
    frames = {len(s) for s in streams}
    if len(frames) != 1:
        raise ValueError(f"embedding streams disagree on the frame count: {sorted(frames)}")
    return np.concatenate(streams, axis=1)
