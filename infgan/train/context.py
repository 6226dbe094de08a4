"""Where a run executes. Every difference between the ways a run executes lives in a RunContext;
the training side's are here, side by side (`infgan.train` numbers the four paths that use them):

- `RunContext`: one plain process, rank 0 of 1 (`infgan train`, a W&B agent's run);
  checkpoints are files in the run directory, results go to the run directory.
- `DistributedContext`: one rank of a torch.distributed process group, DDP-wrapped models,
  collectives for reductions; the base of the Ray Train context (and used directly by the DDP tests).
- `RayTrainContext`: a Ray Train worker (`infgan train --workers N`, a multi-worker Tune trial);
  checkpoints and results go through `ray.train.report`.
- `TuneTrialContext` (in `infgan/tune/trial.py`, with everything else that runs in a sweep's trial):
  a one-worker Tune trial; checkpoints are files, results go to Tune.

A context says: rank and world size, device, how models are wrapped (DDP or not), how values are
reduced, gathered or broadcast across ranks, where checkpoints come from and go, and whom results
are reported to. Ray is imported lazily, only by the Ray contexts' methods.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from infgan.config import ConfigError
from infgan.train.checkpoint import RAY_STATE_FILE, load_checkpoint, load_latest_intact, save_checkpoint


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"'train.device' is {name!r} but this machine has no CUDA device; use auto or cpu")
    return device


def _same(x: torch.Tensor) -> torch.Tensor:
    return x


@dataclass(frozen=True)
class Shard:
    """This rank's place in the global batch, as a loss sees it: the batch is split across ranks, and
    a loss whose value couples paths (a kernel over pairs) needs every rank's paths.

    `gather` concatenates a tensor over ranks in rank order, with gradients flowing back to each
    rank's own rows (the identity in one process).
    """

    rank: int = 0
    world_size: int = 1
    gather: Callable[[torch.Tensor], torch.Tensor] = field(default=_same)


@dataclass
class RunContext:
    """A single plain process: rank 0 of 1, no wrapping, checkpoints as files in the run directory."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    rank: int = 0
    world_size: int = 1
    progress: bool = True

    @property
    def is_main(self) -> bool:
        """Whether this process evaluates and writes files, plots and progress (rank 0)."""
        return self.rank == 0

    def wrap(self, module: nn.Module) -> nn.Module:
        """The module as the training step should call it (DDP in a multi-worker context)."""
        return module

    def shard(self) -> Shard:
        """This rank's place in the global batch, for the training step's losses."""
        return Shard()

    def reduce_mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average scalar diagnostics over ranks (a collective: every rank must call it)."""
        return values

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order (a collective)."""
        return [obj]

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj`, on every rank (a collective)."""
        return obj

    def any_true(self, flag: bool) -> bool:
        """Whether `flag` holds on any rank (a collective), so that all ranks stop together."""
        return flag

    def restore(self, run_dir: Path, resume: bool) -> dict[str, Any] | None:
        """The checkpoint to continue from, or None to start afresh."""
        found = load_latest_intact(run_dir / "checkpoints") if resume else None
        return found[1] if found else None

    def publish(
        self, run_dir: Path, step: int, record: dict[str, Any] | None, payload: dict[str, Any] | None, keep: int
    ) -> None:
        """Hand on an evaluation's record and/or a checkpoint payload (a collective in Ray Train:
        every rank calls it with the same record)."""
        if payload is not None and self.is_main:
            save_checkpoint(run_dir / "checkpoints", step, payload, keep)


@dataclass
class DistributedContext(RunContext):
    """One rank of a torch.distributed process group (gloo on CPU, nccl on GPU): DDP models."""

    def wrap(self, module: nn.Module) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def shard(self) -> Shard:
        return Shard(self.rank, self.world_size, _gather_rows)

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

    def broadcast(self, obj: Any) -> Any:
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]


class _GatherRows(torch.autograd.Function):
    """All-gather along dim 0 (equal sizes on every rank) whose backward hands each rank the sum,
    over ranks, of the gradients with respect to its own rows: every rank's loss depends on every
    rank's rows. An all-reduce of the whole gradient, then this rank's slice: gloo has no
    reduce-scatter."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        ctx.rank, ctx.rows = dist.get_rank(), x.size(0)
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


def _gather_rows(x: torch.Tensor) -> torch.Tensor:
    if not x.requires_grad:
        import torch.distributed as dist

        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)
    return _GatherRows.apply(x)


@dataclass
class RayTrainContext(DistributedContext):
    """A Ray Train worker: rank and device from Ray, checkpoints and metrics through `ray.train.report`.

    Checkpoints are Ray Train checkpoints persisted under `<run dir>/checkpoints/step_NNNNNN/state.pt`,
    so a run directory looks the same whichever way it was trained, and a restarted worker group
    continues from the latest one. A PBT member's workers (`owner`: its trial id) mark each
    checkpoint as theirs and start from `start`, the state the member adopted, until their run
    has a checkpoint of its own.
    """

    start: str | None = None
    owner: str | None = None

    @classmethod
    def current(cls, use_gpu: bool, start: str | None = None, owner: str | None = None) -> RayTrainContext:
        """The context of the calling Ray Train worker."""
        import ray.train
        import ray.train.torch

        tc = ray.train.get_context()
        device = ray.train.torch.get_device() if use_gpu else torch.device("cpu")
        return cls(
            device=device,
            rank=tc.get_world_rank(),
            world_size=tc.get_world_size(),
            progress=False,
            start=start,
            owner=owner,
        )

    def restore(self, run_dir: Path, resume: bool) -> dict[str, Any] | None:
        import ray.train

        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None and self.start is not None:
            return load_checkpoint(Path(self.start))
        if checkpoint is None:  # no Ray checkpoint yet: maybe a single-process run to continue
            return super().restore(run_dir, resume)
        with checkpoint.as_directory() as d:
            return load_checkpoint(Path(d) / RAY_STATE_FILE)

    def publish(
        self, run_dir: Path, step: int, record: dict[str, Any] | None, payload: dict[str, Any] | None, keep: int
    ) -> None:
        import ray.train

        # Every worker must reach ray.train.report (Ray Train waits for all of them), with or
        # without a checkpoint; the metrics of rank 0 are the ones Ray hands on.
        metrics = dict(record) if record is not None else {"step": step}
        if record is not None and self.is_main:
            print(f"step {step}: val/score {record['val/score']:.4f}", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            if payload is not None and self.is_main:  # rank 0 alone writes; Ray persists it to the run directory
                torch.save({**payload, "owner": self.owner} if self.owner else payload, Path(tmp) / RAY_STATE_FILE)
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            name = f"step_{step:06d}" if payload is not None else None
            ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=name)
