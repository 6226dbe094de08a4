"""Where a run executes. Every difference between the paths (plain process, Tune trial, Ray Train
worker) lives in a RunContext: rank and world size, device, how models are wrapped, how metrics
are reduced, and where results and checkpoints are reported."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from infgan.config import ConfigError


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
    """A single plain process: rank 0 of 1, no wrapping, nothing to report beyond the run directory."""

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

    def report(self, metrics: dict[str, Any], checkpoint: Path | None) -> None:
        """Hand an evaluation's metrics (and the checkpoint written with it) to whoever runs us."""
        del metrics, checkpoint
