"""End-of-epoch training checkpoints, so `--resume` continues a stopped run to the same result.

A checkpoint is one safetensors file, replaced atomically after every epoch: the model's and the
best epoch's tensors, the optimiser's state tensors, torch's RNG state, and in its header's
metadata one JSON object with everything else the loop carries (next epoch, best score and
epoch, the stale counter, the history, the epoch-order generator's state, the optimiser's
hyperparameters). Nothing is pickled, so loading a checkpoint runs no code.

Why a resumed run equals an uninterrupted one: every other draw of an epoch (crops, gains, views,
the normaliser's session order) is a function of (seed, epoch) alone (trainer.sampling); the one
generator that advances across epochs (the epoch order) and torch's global RNG are saved and
restored, as are Adam's moments and step counts. The same float operations then run in the same
order, so on the same machine and thread count the weights are bitwise equal.

The checkpoint records what it was made from (`identity`: the training config apart from the
number of epochs, the class list, the clips and their labels, the objective): resuming with other
data or settings is an error, not a silent mix. The number of epochs may grow.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from emolive.engine.files import leftover_partials, open_locked
from emolive.trainer.errors import TrainerError
from emolive.trainer.whole_files import replace_whole

CHECKPOINT_FILE = "checkpoint.safetensors"
LOCK_FILE = ".lock"  # held by the run training into the folder's bundle (hold_checkpoint_folder)
_STATE_KEY = "emolive_training_state"


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; the text says where the last checkpoint is (the CLI prints it)."""


def interrupted_after_training(directory: Path) -> TrainingInterrupted:
    """Ctrl-C once the epochs are done, while the held-out splits are scored or the bundle written: the
    last epoch's checkpoint holds the run, and --resume writes its bundle without training again (the
    message said only "interrupted", as if the run were lost)."""
    return TrainingInterrupted(f"after the last epoch, before the bundle was written; the checkpoint "
                               f"{directory / CHECKPOINT_FILE} holds the run: add --resume to write it")


@dataclass
class Progress:
    """What the training loop carries from one epoch to the next."""

    next_epoch: int = 0
    best: float = -math.inf
    best_epoch: int = -1
    best_state: dict[str, torch.Tensor] | None = None
    stale: int = 0
    stopped: bool = False  # early stopping ended the loop
    history: list[dict] = field(default_factory=list)
    seen: int = 0
    busy: float = 0.0


def save_checkpoint(directory: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, progress: Progress,
                    rng: np.random.Generator, identity: dict[str, Any]) -> Path:
    """Write the checkpoint (atomically: a kill mid-write leaves the previous one)."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if progress.best_state is not None:
        tensors.update({f"best.{k}": v for k, v in progress.best_state.items()})
    optim = opt.state_dict()
    optim_values: dict[str, dict[str, Any]] = {}
    for index, values in optim["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{name}"] = value
            else:
                optim_values.setdefault(str(index), {})[name] = value
    tensors["rng.torch"] = torch.get_rng_state()
    state = {k: v for k, v in asdict(progress).items() if k != "best_state"}
    state.update(identity=identity, has_best=progress.best_state is not None, numpy_rng=rng.bit_generator.state,
                 optimizer={"param_groups": optim["param_groups"], "values": optim_values})
    blob = save_tensors({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()},
                        metadata={_STATE_KEY: json.dumps(state)})
    directory.mkdir(parents=True, exist_ok=True)
    entry = directory / CHECKPOINT_FILE
    replace_whole(entry, blob, "the checkpoint", sync=True)
    return entry


def load_checkpoint(directory: Path, model: torch.nn.Module, opt: torch.optim.Optimizer,
                    rng: np.random.Generator, identity: dict[str, Any]) -> Progress:
    """Restore model, optimiser and RNGs from `directory`; returns the loop's progress."""
    entry = directory / CHECKPOINT_FILE
    try:
        blob = entry.read_bytes()
    except OSError as err:
        raise TrainerError(f"no checkpoint to resume at {entry} ({err.strerror}); run without --resume") from None
    state, tensors = _parse(blob, entry)
    broken = sorted(k for k, v in tensors.items() if k.startswith(("model.", "best.")) and v.is_floating_point()
                    and not torch.isfinite(v).all())
    if broken:  # found now, not hours later when the bundle is written from them
        raise TrainerError(f"{entry} holds NaN or infinite weights ({', '.join(broken[:3])}"
                           f"{', …' if len(broken) > 3 else ''}); start again without --resume")
    if state.get("identity") != identity:
        raise TrainerError(f"{entry} was made with other data or settings; resume with the arguments of that run, "
                           "or start again without --resume")
    try:  # the state's fields checked, then handed to torch and numpy, whose own checks raise all kinds
        progress = _progress(state, tensors)
        device = next(model.parameters()).device
        model.load_state_dict({k[len("model."):]: v.to(device) for k, v in tensors.items() if k.startswith("model.")})
        values = state["optimizer"]["values"]
        per_param: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, index, name = key.split(".", 2)
                per_param.setdefault(int(index), {})[name] = value
        for index, extra in values.items():
            per_param.setdefault(int(index), {}).update(extra)
        groups = state["optimizer"]["param_groups"]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) and 0 <= v < 1e3  # lr, betas, eps, decay
                   for group in groups for v in group.values() if not isinstance(v, (bool, list, str, type(None)))):
            raise ValueError("optimizer settings out of range")
        opt.load_state_dict({"state": per_param, "param_groups": groups})
        torch.set_rng_state(tensors["rng.torch"])
        rng.bit_generator.state = state["numpy_rng"]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RuntimeError) as err:
        # an edited or damaged state: it was one of a dozen tracebacks, from numpy, torch or the loop
        raise TrainerError(f"{entry} is not a complete training checkpoint ({type(err).__name__}: "
                           f"{str(err).splitlines()[0][:80] if str(err) else 'its state'}); start again without "
                           "--resume") from None
    return progress


def _progress(state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Progress:
    """The loop's progress from a checkpoint's state, each field of its type and range (ValueError)."""
    fields = {k: state[k] for k in ("next_epoch", "best", "best_epoch", "stale", "stopped", "history", "seen", "busy")}
    counts = [fields[k] for k in ("next_epoch", "best_epoch", "stale", "seen")]
    whole = all(isinstance(n, int) and not isinstance(n, bool) for n in counts)
    if not whole or not isinstance(fields["stopped"], bool):
        raise ValueError("a count or flag of the wrong type")
    history = fields["history"]
    if not (isinstance(history, list) and all(isinstance(row, dict) for row in history)
            and fields["next_epoch"] >= 0 and fields["stale"] >= 0 and fields["seen"] >= 0
            and -1 <= fields["best_epoch"] < max(len(history), 1)):
        raise ValueError("epochs, counts or history out of range")
    for name in ("best", "busy"):  # best is -inf before any epoch; never NaN
        if not isinstance(fields[name], (int, float)) or math.isnan(fields[name]) or fields[name] == math.inf:
            raise ValueError(f"{name} is not a number")
    if not isinstance(state["has_best"], bool):
        raise ValueError("has_best is not a flag")
    best_state = ({k[len("best."):]: v for k, v in tensors.items() if k.startswith("best.")}
                  if state["has_best"] else None)
    return Progress(**fields, best_state=best_state)


@contextlib.contextmanager
def hold_checkpoint_folder(directory: Path, out: Path) -> Iterator[None]:
    """The checkpoint folder, made and locked for this run: two runs into one --out shared its default
    checkpoint, and one removed it under the other, which then could not write its bundle and named a
    checkpoint that no longer existed. The kernel lets the lock go however the run ends; the folder is
    removed after, unless it keeps a checkpoint (an interrupted run's, for --resume)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = open_locked(directory / LOCK_FILE)
    if fd is None:
        raise TrainerError(f"another trainer is training into {out} (its checkpoint folder {directory} is in "
                           "use): wait for it, or give another --out or --checkpoint-dir")
    try:
        for stale in leftover_partials(directory / CHECKPOINT_FILE):  # a killed run's half-written checkpoint
            stale.unlink(missing_ok=True)
        try:
            yield
        finally:
            (directory / LOCK_FILE).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # kept: a checkpoint to resume from, or someone's other files
                directory.rmdir()
    finally:
        os.close(fd)


def remove_checkpoint(directory: Path) -> None:
    """Once the bundle is written the checkpoint has served: remove it (hold_checkpoint_folder then
    removes its folder)."""
    (directory / CHECKPOINT_FILE).unlink(missing_ok=True)


def _parse(blob: bytes, entry: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The JSON state and the tensors of a checkpoint file; a damaged file is a TrainerError."""
    try:
        (length,) = struct.unpack_from("<Q", blob)
        state = json.loads(json.loads(blob[8:8 + length])["__metadata__"][_STATE_KEY])
        tensors = load_tensors(blob)
    except (struct.error, ValueError, KeyError, TypeError, SafetensorError) as err:
        raise TrainerError(f"{entry} is not a complete training checkpoint ({type(err).__name__}); "
                           "start again without --resume") from None
    return state, tensors
