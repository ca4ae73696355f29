"""Data-parallel training and sharded extraction under `torchrun` (gloo on CPU, nccl on GPU).

Without torchrun's environment (WORLD_SIZE unset or 1) everything here is a no-op on a
single-process `Context`, so the commands run unchanged on one machine.

The training scheme is built so that N ranks compute exactly what one process computes:
every rank draws the same epoch order and crops (same seed), takes a contiguous slice of each
batch, and the batch's outputs are gathered before the loss. CCC is a statistic of the whole
batch, so a per-rank CCC over half a batch would be a different objective; on the gathered batch
every rank computes the single-process loss, and `gather_rows` lets gradient flow only into the
rank's own rows. DDP then averages the ranks' gradients, so each rank backpropagates
`world_size * loss` and the average is the sum of the per-rank parts: the full-batch gradient.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Sequence, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    """Where this process stands: its rank, how many ranks, and the device it computes on."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Only the main rank writes files and prints, so outputs appear once."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup() -> Context:
    """Join torchrun's process group when launched by it (env:// rendezvous); else one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return context()


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def context() -> Context:
    """The current process's context, read from the initialised process group (if any)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Context()
    device = torch.device("cpu")
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    return Context(dist.get_rank(), dist.get_world_size(), device)


def wrap(model: nn.Module, ctx: Context) -> nn.Module:
    """The module to train: DistributedDataParallel across ranks, the module itself alone."""
    if not ctx.distributed:
        return model
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def shard(items: Sequence[T], ctx: Context) -> list[T]:
    """This rank's share of a corpus: every world_size-th item, so long and short files mix."""
    return list(items[ctx.rank::ctx.world_size])


def gather(obj: Any, ctx: Context) -> list[Any]:
    """Every rank's `obj` (any picklable value), in rank order, on every rank."""
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def unshard(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Undo `shard` on rows: rank r's i-th row is item r + i * world_size of the whole."""
    whole = np.empty((sum(len(p) for p in parts), *parts[0].shape[1:]), dtype=parts[0].dtype)
    for r, p in enumerate(parts):
        whole[r::len(parts)] = p
    return whole


def broadcast(obj: T, ctx: Context) -> T:
    """The main rank's `obj` on every rank: one decision (e.g. early stopping) for all."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def batch_slices(n: int, ctx: Context) -> list[slice]:
    """Contiguous slices of an n-item batch, one per rank, so their concatenation is the batch."""
    bounds = np.linspace(0, n, ctx.world_size + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def gather_rows(local: torch.Tensor, sizes: Sequence[int], ctx: Context) -> torch.Tensor:
    """The whole batch's rows, rank by rank; only this rank's rows carry gradient.

    The other ranks' rows are constants here: their gradient is computed on their own rank, and
    DDP's all-reduce adds the parts together.
    """
    if not ctx.distributed:
        return local
    if math.prod(local.shape[1:]) == 0:  # e.g. the 0-wide logits of a model without class head
        return local.new_zeros((sum(sizes), *local.shape[1:]))
    padded = local.new_zeros((max(sizes), *local.shape[1:]))
    padded[: len(local)] = local.detach()
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    rows = [p[:n] for p, n in zip(parts, sizes)]
    rows[ctx.rank] = local
    return torch.cat(rows)
