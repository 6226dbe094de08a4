"""Neural CDE critic over the linearly interpolated path, with careful clipping."""

from __future__ import annotations

import torch
import torchcde
from torch import nn

from infgan.config import ModelConfig
from infgan.models.mlp import MLP, fused_on_grid
from infgan.models.solver import Contraction, grid_for, reversible_heun


class _VectorField(nn.Module):
    """CDE vector field f(t, h): (batch, hidden) -> (batch, hidden, 1 + data)."""

    def __init__(self, channels: int, hidden_size: int, mlp_size: int, num_layers: int):
        super().__init__()
        self.channels, self.hidden_size = channels, hidden_size
        self.time_scale = 1.0  # set per solve: 1 / (last time) with model.unit_time
        self.mlp = MLP(1 + hidden_size, hidden_size * channels, mlp_size, num_layers, tanh=True)

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        # t: (), h: (batch, hidden) -> (batch, hidden, channels)
        th = torch.cat([(t * self.time_scale).expand(h.size(0), 1), h], dim=1)
        return self.mlp(th).view(h.size(0), self.hidden_size, self.channels)


class Critic(nn.Module):
    """Scores each path (batch, time, 1 + data) with a neural CDE; one score per path."""

    def __init__(self, data_size: int, cfg: ModelConfig, cond_width: int = 0):
        super().__init__()
        self.cfg, self.cond_width = cfg, cond_width
        channels = 1 + data_size  # time is channel 0
        # A conditional critic sees the condition vector beside the path's first value.
        self.initial = MLP(channels + cond_width, cfg.hidden_size, cfg.mlp_size, cfg.num_layers, tanh=False)
        self.func = _VectorField(channels, cfg.hidden_size, cfg.mlp_size, cfg.num_layers)
        self.readout = nn.Linear(cfg.hidden_size, 1)

    def _initial(self, first: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if (cond is None) != (self.cond_width == 0):
            raise ValueError(f"this critic takes {self.cond_width} condition inputs; got {cond is not None}")
        return self.initial(first if cond is None else torch.cat([first, cond], dim=1))

    def forward(
        self, coeffs: torch.Tensor, adjoint: bool | None = None, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        # coeffs: (batch, time, 1 + data) linear-interpolation coefficients, cond: (batch, cond_width) -> (batch,)
        adjoint = self.cfg.adjoint if adjoint is None else adjoint
        if not adjoint:
            return self.readout(self._final_state(coeffs, cond)).squeeze(-1)
        path = torchcde.LinearInterpolation(coeffs)
        h0 = self._initial(path.evaluate(path.interval[0]), cond)
        self.func.time_scale = 1.0 / float(path.interval[-1]) if self.cfg.unit_time else 1.0
        hs = torchcde.cdeint(
            path,
            self.func,
            h0,
            path.interval,
            adjoint=True,
            method="reversible_heun",
            backend="torchsde",
            dt=self.cfg.dt,
            adjoint_method="adjoint_reversible_heun",
            adjoint_params=(coeffs,) + tuple(self.func.parameters()),
        )
        return self.readout(hs[:, -1]).squeeze(-1)

    def _final_state(self, coeffs: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The CDE's state at the last time (batch, hidden), as torchcde's `cdeint` with torchsde's
        reversible Heun computes it (an ODE with drift f(t, h) X'(t), X' piecewise constant and
        taken at each step's time, knots at 0 .. time - 1), by backpropagation through a plain
        loop (infgan/models/solver.py)."""
        length = coeffs.size(1)
        knots = torch.arange(length, dtype=coeffs.dtype, device=coeffs.device)
        grid = grid_for(knots[[0, -1]], self.cfg.dt)
        derivs = coeffs[:, 1:] - coeffs[:, :-1]  # (batch, time - 1, channels): knots one apart
        # torchcde: the slope of the interval ending at t (the first one at t0).
        index = (torch.bucketize(grid.times, knots) - 1).clamp(0, length - 2)
        slopes = Contraction(derivs[:, index].transpose(0, 1), self.cfg.hidden_size)  # X' at each grid time
        scale = 1.0 / float(length - 1) if self.cfg.unit_time else 1.0
        mlp = fused_on_grid([self.func.mlp], grid.times.to(coeffs.dtype) * scale)

        def field(k: int, h: torch.Tensor) -> tuple[torch.Tensor, None]:
            return slopes(mlp(k, h)[0], k), None  # f(t_k, h) X'(t_k): (batch, hidden, channels) times (batch, channels)

        h0 = self._initial(coeffs[:, 0], cond)
        return reversible_heun(field, h0, grid, None, final_only=True)

    @torch.no_grad()
    def clip_weights(self) -> None:
        """Careful clipping: clamp every Linear weight to +-1/out_features after each critic step."""
        # Why: with 1-Lipschitz activations this bounds the critic's Lipschitz constant, the
        # Wasserstein critic's constraint, without the cost of a gradient penalty (up to 1.87x
        # faster in Kidger et al. 2021).
        for module in self.modules():
            if isinstance(module, nn.Linear):
                lim = 1.0 / module.out_features
                module.weight.clamp_(-lim, lim)
