"""The reversible Heun scheme on a fixed grid, as a plain loop over precomputed increments.

torchsde's `sdeint(method="reversible_heun")` takes the same steps, but spends most of a tiny
model's time around them: Brownian Interval queries, solver bookkeeping, and (through torchcde)
a zero diffusion and a Brownian motion the CDE never uses. With gradients by backpropagation
(`model.adjoint: false`) nothing needs the Brownian Interval's tree, so here the increments are
drawn once per solve, the grid is computed once, and each step is the scheme's arithmetic only.
The adjoint (`model.adjoint: true`) still goes through torchsde, which reconstructs the forward
states from the same scheme.

The grid and the outputs follow torchsde's fixed-step loop exactly: steps of `dt` from the first
time, the last step cut at the final time, outputs linearly interpolated between the steps around
them (so outputs on the grid are the solver's states). `tests/test_solver.py` checks values and
gradients against torchsde on the same Brownian sample.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

# (index of a grid time, state) -> (drift (batch, hidden), diffusion or None), the diffusion in
# whatever form the solver's `noise` product takes (`Contraction`: flat (batch, hidden * noise)).
Field = Callable[[int, torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]


# Rows up to which `Contraction` sums with a matrix product (its work grows with rows squared).
SUMMING_PRODUCT_MAX_ROWS = 32


class Contraction:
    """Products sum_c m[b, j, c] v[k, b, c] for a matrix m given flat (batch, rows * cols), as a
    layer's output comes, and vectors v given for every k at once (steps, batch, cols).

    For few rows (the reference's 16): v_k spread to (batch, rows * cols) by a product with a fixed
    0/1 spreading matrix, an elementwise product, then a product with a fixed 0/1 summing matrix.
    Measured on one CPU thread at batch 2048 over 64 steps, forward and backward: about half the
    time of repeating v for all steps at once (whose backward stacks and sums a tensor of all
    steps' gradients), and about a third of the broadcast multiply-and-sum over a last dimension of
    2 or 3 (or of `bmm`). For more rows the summing product's work (rows squared) outgrows it, and
    the broadcast multiply-and-sum is used.
    """

    def __init__(self, v: torch.Tensor, rows: int):
        steps, batch, cols = v.shape
        self.rows, self.cols = rows, cols
        # Unbound once: indexing a stacked tensor per step would make its backward fill a zero
        # tensor of all steps each time.
        self.per_step = v.unbind(0)
        self.spreading: torch.Tensor | None = None
        self.summing: torch.Tensor | None = None
        if rows <= SUMMING_PRODUCT_MAX_ROWS:
            # Index j * cols + c of a flat row holds m[j, c]; spreading puts v[c] there.
            eye = torch.eye(cols, dtype=v.dtype, device=v.device)
            self.spreading = eye.repeat(1, rows)  # (cols, rows * cols)
            self.summing = torch.eye(rows, dtype=v.dtype, device=v.device).repeat_interleave(cols, dim=0)

    def __call__(self, flat: torch.Tensor, k: int) -> torch.Tensor:
        """(batch, rows * cols) at step k -> (batch, rows)."""
        if self.summing is not None and self.spreading is not None:
            return torch.mm(flat * torch.mm(self.per_step[k], self.spreading), self.summing)
        return (flat.view(-1, self.rows, self.cols) * self.per_step[k].unsqueeze(1)).sum(-1)


class Grid:
    """The solver's step times for output times `ts` and step `dt`, as torchsde makes them."""

    def __init__(self, ts: torch.Tensor, dt: float):
        cpu = ts.detach().cpu()  # built on the CPU: no device round trip per comparison
        times, outputs = [cpu[0]], [(0, 0, 1.0)]  # per output: (step before, step at/after, weight of the latter)
        curr = cpu[0]
        for out in cpu[1:]:
            while curr < out:
                curr = torch.clamp(curr + dt, max=cpu[-1])  # torchsde: min(curr_t + dt, ts[-1])
                times.append(curr)
            k = len(times) - 1
            before, after = times[k - 1], times[k]
            outputs.append((k - 1, k, float((out - before) / (after - before))))
        self.times = torch.stack(times).to(ts.device)  # (steps + 1,)
        self.steps = len(times) - 1
        self.outputs = outputs
        self.on_grid = all(w == 1.0 for _, _, w in outputs)
        self.every_step = self.on_grid and len(outputs) == len(times)  # one step per output interval
        self.after = torch.tensor([k for _, k, _ in outputs], device=ts.device)
        self.dt = self.times[1:] - self.times[:-1]  # step sizes (steps,)
        self.dt_list = self.dt.tolist()  # the same, for the loop (read once: no device sync per solve)

    def at_outputs(self, ys: torch.Tensor) -> torch.Tensor:
        """States at every grid time (steps + 1, ...) -> states at the output times (len(ts), ...)."""
        if self.every_step:
            return ys
        if self.on_grid:
            return ys[self.after]
        rows = [ys[k] if w == 1.0 else (1.0 - w) * ys[j] + w * ys[k] for j, k, w in self.outputs]
        return torch.stack(rows)


@functools.lru_cache(maxsize=16)
def _cached_grid(times: tuple[float, ...], dt: float, device: str) -> Grid:
    return Grid(torch.tensor(times, device=device), dt)


def grid_for(ts: torch.Tensor, dt: float) -> Grid:
    """`Grid(ts, dt)`, built once per distinct (times, dt, device): a solve per step, the same grid."""
    return _cached_grid(tuple(ts.detach().cpu().tolist()), dt, str(ts.device))


def brownian_increments(
    grid: Grid, batch: int, channels: int, generator: torch.Generator, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Increments of a Brownian motion over each step of `grid`: (steps, batch, channels), drawn on
    the CPU from `generator` (the same numbers on any device)."""
    z = torch.randn(grid.steps, batch, channels, generator=generator, dtype=dtype)
    return z.to(device) * grid.dt.to(dtype).sqrt().view(-1, 1, 1)


def reversible_heun(
    field: Field, y0: torch.Tensor, grid: Grid, dw: torch.Tensor | None, final_only: bool = False
) -> torch.Tensor:
    """Solve dy = f dt + g o dW (Stratonovich) on `grid`; returns y at every grid time (steps + 1, batch, d),
    or with `final_only` at the last one (batch, d).

    `dw` (steps, batch, noise) are the increments, and the field's diffusion comes flat
    (batch, d * noise); `dw` is None when the field has no diffusion. Per step, as torchsde's:
    z1 = 2 y0 - z0 + f0 dt + g0 dW;  y1 = y0 + (f0 + f1) dt / 2 + (g0 + g1) dW / 2.
    """
    dts = grid.dt_list
    noise = Contraction(dw, y0.size(1)) if dw is not None else None
    f0, g0 = field(0, y0)
    y = z = y0
    ys = [y0]
    for k in range(grid.steps):
        # In place only on fresh intermediates that no backward has saved: fewer allocations.
        dt = dts[k]
        z1 = (y - z).add_(y).add_(f0, alpha=dt)
        g0dw = noise(g0, k) if noise is not None and g0 is not None else None
        if g0dw is not None:
            z1.add_(g0dw)
        f1, g1 = field(k + 1, z1)
        y1 = (f0 + f1).mul_(0.5 * dt).add_(y)
        if g0dw is not None and noise is not None and g1 is not None:
            y1.add_(noise(g1, k).add_(g0dw), alpha=0.5)
        y, z, f0, g0 = y1, z1, f1, g1
        if not final_only:
            ys.append(y)
    return y if final_only else torch.stack(ys)
