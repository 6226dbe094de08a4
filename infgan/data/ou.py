"""The reference's Ornstein-Uhlenbeck data: dY = (0.02 t - 0.1 Y) dt + 0.4 (2t/T) dW, Y0 ~ U(-1, 1)."""

from __future__ import annotations

import hashlib
import importlib.metadata

import torch
import torchsde
from torch import nn

from infgan.cache import cached_array

MU, THETA, SIGMA = 0.02, 0.1, 0.4
SOLVER_DT = 0.1  # the reference solves the data SDE at a step of 0.1 time units


class OrnsteinUhlenbeck(nn.Module):
    """Time-inhomogeneous OU SDE (Ito, scalar noise) with a diffusion that grows linearly in t."""

    sde_type = "ito"
    noise_type = "scalar"

    def __init__(self, t_size: int):
        super().__init__()
        self.t_size = t_size

    def f(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # y: (batch, 1) -> (batch, 1)
        return MU * t - THETA * y

    def g(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # y: (batch, 1) -> (batch, 1, 1)
        return (SIGMA * 2 * t / self.t_size).expand(y.size(0), 1, 1)


def times(t_size: int) -> torch.Tensor:
    """Observation times 0, 1, ..., t_size - 1."""
    return torch.linspace(0, t_size - 1, t_size)


@torch.no_grad()
def sample_ou(n: int, t_size: int, generator: torch.Generator) -> torch.Tensor:
    """`n` OU paths observed at `times(t_size)`: (n, t_size, 1), in data units.

    The starts and the Brownian motion's seed are drawn from `generator` every time (so it moves on
    as it always has); the solve, about a second for the default run's 8192 paths, is done once per
    machine for those inputs and then read from infgan's cache (`infgan/cache.py`)."""
    y0 = torch.rand(n, 1, generator=generator) * 2 - 1
    entropy = int(torch.randint(0, 2**31 - 1, (), generator=generator))
    key = {
        "t_size": t_size,
        "y0": hashlib.sha256(y0.numpy().tobytes()).hexdigest(),
        "dtype": str(y0.dtype),
        "entropy": entropy,
        **{package: importlib.metadata.version(package) for package in ("torch", "torchsde")},
    }
    return torch.from_numpy(cached_array("ou", key, lambda: solve(y0, entropy, t_size).numpy()))


def solve(y0: torch.Tensor, entropy: int, t_size: int) -> torch.Tensor:
    """The OU paths from starts `y0` (n, 1) driven by the Brownian motion seeded `entropy`: (n, t_size, 1)."""
    ts = times(t_size)
    # Scalar-noise Ito SDEs get torchsde's default SRK solver, as in the reference; it needs
    # the space-time Levy area from the Brownian Interval.
    bm = torchsde.BrownianInterval(
        t0=ts[0], t1=ts[-1], size=y0.shape, entropy=entropy, dt=SOLVER_DT, levy_area_approximation="space-time"
    )
    ys = torchsde.sdeint(OrnsteinUhlenbeck(t_size), y0, ts, bm=bm, dt=SOLVER_DT)  # (time, n, 1)
    return ys.transpose(0, 1).contiguous()
