"""Where a run executes. Every difference between the paths (plain process, Tune trial, Ray Train
worker) lives in a RunContext: rank and world size, device, how models are wrapped, how values
are reduced across ranks, where checkpoints come from and go, and whom results are reported to."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from infgan.config import ConfigError
from infgan.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"'train.device' is {name!r} but this machine has no CUDA device; use auto or cpu")
    return device


@dataclass
class RunContext:
    """A single plain process: rank 0 of 1, no wrapping, checkpoints as files in the run directory."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    rank: int = 0
    world_size: int = 1
    progress: bool = True

    @property
    def is_main(self) -> bool:
        """Whether this process writes files, plots and progress (rank 0)."""
        return self.rank == 0

    def wrap(self, module: nn.Module) -> nn.Module:
        """The module as the training step should call it (DDP in a multi-worker context)."""
        return module

    def reduce_mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average scalar diagnostics over ranks."""
        return values

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order (a collective: every rank must call it)."""
        return [obj]

    def any_true(self, flag: bool) -> bool:
        """Whether `flag` holds on any rank (a collective), so that all ranks stop together."""
        return flag

    def restore(self, run_dir: Path, resume: bool) -> dict[str, Any] | None:
        """The checkpoint to continue from, or None to start afresh."""
        path = latest_checkpoint(run_dir / "checkpoints") if resume else None
        return load_checkpoint(path) if path else None

    def publish(self, run_dir: Path, step: int, record: dict[str, Any] | None,
                payload: dict[str, Any] | None, keep: int) -> None:
        """Hand on an evaluation's record and/or a checkpoint payload (written by rank 0)."""
        if payload is not None and self.is_main:
            save_checkpoint(run_dir / "checkpoints", step, payload, keep)


@dataclass
class DistributedContext(RunContext):
    """One rank of a torch.distributed process group (gloo on CPU, nccl on GPU): DDP models."""

    def wrap(self, module: nn.Module) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def reduce_mean(self, values: dict[str, float]) -> dict[str, float]:
        if not values:
            return values
        import torch.distributed as dist

        t = torch.tensor(list(values.values()), dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return dict(zip(values, (t / self.world_size).tolist()))

    def any_true(self, flag: bool) -> bool:
        import torch.distributed as dist

        t = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def gather(self, obj: Any) -> list[Any]:
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out
