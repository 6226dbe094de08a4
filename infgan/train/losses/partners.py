"""Partners for a kernel score whose cost grows linearly with the batch (an incomplete U-statistic).

A kernel score of m generated points against n real ones averages k(x_i, x_j) over every pair of
generated points and k(x_i, y_j) over every generated and real point: its cost grows with the square
of the batch. Scoring each generated point against K other generated points and K real ones, drawn
afresh each step, keeps the estimate unbiased (each point's expected term over the draw is its term
against all of them) at a cost linear in the batch. `fdm` draws per pair of times, the signature
kernel once per step; both draw from a generator seeded alike on every rank, indexed by a point's
place in the global batch, so that the ranks of a DDP run score one global draw.
"""

from __future__ import annotations

import torch


def draw_partners(m: int, n: int, k: int, groups: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """For each of `groups` independent draws and each of the `m` generated points, `k` other generated
    points (never itself) and `k` of the `n` real ones: index tensors (groups, m, k). Partner j of
    point i is i shifted by a random offset drawn for that group and j: uniform over the others (over
    the real points) for every point, as an unbiased estimate needs, at one draw per group and partner."""
    own = torch.arange(m).view(1, m, 1)
    shift = torch.randint(0, max(m - 1, 1), (groups, 1, k), generator=g)
    real = torch.randint(0, n, (groups, 1, k), generator=g)
    return (own + 1 + shift) % m, (own + real) % n
