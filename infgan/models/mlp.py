"""The small MLP used by every vector field and initial map, with the LipSwish activation."""

from __future__ import annotations

import torch
from torch import nn


class LipSwish(nn.Module):
    """0.909 * SiLU: SiLU scaled to be 1-Lipschitz, so the clipped critic stays Lipschitz."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (..., features) -> (..., features)
        return 0.909 * nn.functional.silu(x)


class MLP(nn.Sequential):
    """`num_layers` hidden layers of width `width` with LipSwish; an optional final tanh."""

    def __init__(self, in_size: int, out_size: int, width: int, num_layers: int, tanh: bool):
        layers: list[nn.Module] = [nn.Linear(in_size, width), LipSwish()]
        for _ in range(num_layers - 1):
            layers += [nn.Linear(width, width), LipSwish()]
        layers.append(nn.Linear(width, out_size))
        if tanh:
            # Why: a bounded vector field keeps the SDE/CDE solution from blowing up early in
            # training, which is what makes the reference stable without normalisation layers.
            layers.append(nn.Tanh())
        super().__init__(*layers)
