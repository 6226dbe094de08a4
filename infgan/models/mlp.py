"""The small MLP used by every vector field and initial map, with the LipSwish activation."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

LIPSWISH = 0.909


class LipSwish(nn.Module):
    """0.909 * SiLU: SiLU scaled to be 1-Lipschitz, so the clipped critic stays Lipschitz."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = LIPSWISH  # an attribute, not the global: TorchScript (infgan export) reads no globals

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (..., features) -> (..., features)
        return self.scale * nn.functional.silu(x)


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


# Later layers of several MLPs are fused into one block-diagonal product while the block-diagonal
# weight is this small (elements): beyond it, the zeros' work outweighs one product's overhead.
BLOCK_DIAGONAL_MAX = 8192


def fused_on_grid(
    mlps: list[MLP], times: torch.Tensor, const: torch.Tensor | None = None
) -> Callable[[int, torch.Tensor], list[torch.Tensor]]:
    """MLPs of the same shape that all take (t, x) (or (t, x, c) with a `const` input c (batch, e)
    fixed for the solve), as one function of (grid index k, x) giving each one's output: the same
    values as `[m(cat(t_k, x[, c])) for m in mlps]`, in fewer operations per call, for the many
    small calls of a solver.

    Built once per solve: the first layers' weights stacked (one product for all of them) with
    their time term at every grid time precomputed (no concatenation of t and x per call); later
    layers block-diagonal over the MLPs while that is small (`BLOCK_DIAGONAL_MAX`), else one
    product each; LipSwish's factor folded into the weights after it. Gradients reach the MLPs'
    parameters through these.
    """
    linears = [[m for m in mlp if isinstance(m, nn.Linear)] for mlp in mlps]
    tanh = isinstance(mlps[0][-1], nn.Tanh)
    sizes = [layers[-1].out_features for layers in linears]
    weight = torch.cat([layers[0].weight for layers in linears])  # (sum of widths, 1 + x)
    bias = torch.cat([layers[0].bias for layers in linears])
    extra = 0 if const is None else const.size(1)
    first_x = weight[:, 1 : weight.size(1) - extra].t()
    # The constant input's term, once per solve (batch, sum of widths).
    const_term = None if const is None else const @ weight[:, weight.size(1) - extra :].t()
    widths = [layers[0].out_features for layers in linears]
    # One row per grid time, unbound once (indexing per call would cost a zero fill per backward).
    first_bias = (bias + times.unsqueeze(-1) * weight[:, 0]).unbind(0)
    depth = len(linears[0])
    fused = len(mlps) == 1 or all(
        sum(ls[d].in_features for ls in linears) * sum(ls[d].out_features for ls in linears) <= BLOCK_DIAGONAL_MAX
        for d in range(1, depth)
    )
    if fused:
        later = [
            [
                (
                    (LIPSWISH * torch.block_diag(*[layers[d].weight for layers in linears])).t(),
                    torch.cat([layers[d].bias for layers in linears]),
                )
                for d in range(1, depth)
            ]
        ]
    else:
        later = [[((LIPSWISH * layers[d].weight).t(), layers[d].bias) for d in range(1, depth)] for layers in linears]

    def run(k: int, x: torch.Tensor) -> list[torch.Tensor]:
        first = torch.addmm(first_bias[k] if const_term is None else const_term + first_bias[k], x, first_x)
        outs = []
        for a, chain in zip([first] if fused else first.split(widths, dim=1), later):
            for w, b in chain:
                a = torch.addmm(b, nn.functional.silu(a), w)
            outs.append(torch.tanh(a) if tanh else a)
        if fused and len(sizes) > 1:
            return list(outs[0].split(sizes, dim=1))
        return outs

    return run
