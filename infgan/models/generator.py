"""Neural SDE generator: initial noise -> MLP -> hidden SDE (Stratonovich, reversible Heun) -> linear readout."""

from __future__ import annotations

import torch
import torchsde
from torch import nn

from infgan.config import ModelConfig
from infgan.models.mlp import MLP, fused_on_grid
from infgan.models.solver import brownian_increments, grid_for, reversible_heun


class _VectorFields(nn.Module):
    """Drift and diffusion of the hidden SDE, both taking time as an extra input."""

    sde_type = "stratonovich"
    noise_type = "general"

    def __init__(self, hidden_size: int, noise_size: int, mlp_size: int, num_layers: int, cond_width: int = 0):
        super().__init__()
        self.hidden_size, self.noise_size = hidden_size, noise_size
        self.time_scale = 1.0  # set per solve: 1 / (last time) with model.unit_time
        self.condition: torch.Tensor | None = None  # set per solve: (batch, cond_width), a constant input
        self.drift = MLP(1 + hidden_size + cond_width, hidden_size, mlp_size, num_layers, tanh=True)
        self.diffusion = MLP(1 + hidden_size + cond_width, hidden_size * noise_size, mlp_size, num_layers, tanh=True)

    def _with_time(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # t: (), x: (batch, hidden) -> (batch, 1 + hidden [+ cond_width])
        parts = [(t * self.time_scale).expand(x.size(0), 1), x]
        return torch.cat(parts if self.condition is None else [*parts, self.condition], dim=1)

    def f_and_g(self, t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # t: (), x: (batch, hidden) -> drift (batch, hidden), diffusion (batch, hidden, noise)
        tx = self._with_time(t, x)
        return self.drift(tx), self.diffusion(tx).view(x.size(0), self.hidden_size, self.noise_size)

    def f(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.drift(self._with_time(t, x))

    def g(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.diffusion(self._with_time(t, x)).view(x.size(0), self.hidden_size, self.noise_size)

    def on_grid(self, times: torch.Tensor):
        """`f_and_g` at grid index k instead of time t, for the times of a grid: the same values,
        drift and diffusion computed together (`fused_on_grid`)."""
        both = fused_on_grid([self.drift, self.diffusion], times * self.time_scale, self.condition)
        return lambda k, x: tuple(both(k, x))  # (drift, diffusion flat (batch, hidden * noise))


def _independent_noise_if_unsaved(module: nn.Module, state: dict, prefix: str, *args) -> None:
    """A weights' file saved before `noise_mix` existed had independent noises: read it so."""
    if prefix + "noise_scale" in state and prefix + "noise_mix" not in state:
        state[prefix + "noise_mix"] = torch.eye(state[prefix + "noise_scale"].numel())


class Generator(nn.Module):
    """Maps (times, batch size, noise seed) to sample paths with time as channel 0."""

    def __init__(self, data_size: int, cfg: ModelConfig, cond_width: int = 0):
        super().__init__()
        self.cfg, self.cond_width = cfg, cond_width
        # A conditional generator (cond_width > 0) takes the condition vector beside its initial
        # noise and as a constant input of both vector fields.
        self.initial = MLP(
            cfg.initial_noise_size + cond_width, cfg.hidden_size, cfg.mlp_size, cfg.num_layers, tanh=False
        )
        self.func = _VectorFields(cfg.hidden_size, cfg.noise_size, cfg.mlp_size, cfg.num_layers, cond_width)
        self.readout = nn.Linear(cfg.hidden_size, data_size)
        # Observation noise (model.obs_noise > 0): per channel, scale softplus(raw) starting at obs_noise.
        self.noise_scale: nn.Parameter | None = None
        if cfg.obs_noise > 0:
            start = torch.full((data_size,), float(cfg.obs_noise))
            # requires_grad False (model.obs_noise_learn false): the scales stay where they start.
            self.noise_scale = nn.Parameter(start + torch.log(-torch.expm1(-start)), cfg.obs_noise_learn)
        # Channels not held constant (`hold`); kept in the weights' file only where the noise needs it.
        self.keep: torch.Tensor
        self.register_buffer("keep", torch.ones(data_size), persistent=self.noise_scale is not None)
        # How the channels' observation noises mix (`start_noise`): identity (independent) unless started
        # from data whose white-noise channels move together; kept with the weights where there is noise.
        self.noise_mix: torch.Tensor
        self.register_buffer("noise_mix", torch.eye(data_size), persistent=self.noise_scale is not None)
        self.register_load_state_dict_pre_hook(_independent_noise_if_unsaved)
        # Why: the reference scales the initial MLP up (diverse starting points, as the data's
        # Y0 ~ U(-1, 1) is wide) and the vector fields down (a gentle SDE at init), which
        # markedly speeds up the start of training.
        with torch.no_grad():
            for p in self.initial.parameters():
                p.mul_(cfg.initial_scale)
            for p in self.func.parameters():
                p.mul_(cfg.field_scale)

    def start_noise(self, scale: torch.Tensor, correlation: torch.Tensor | None = None) -> None:
        """Start the observation noise's per-channel scale at `scale` (data,), in normalised units, and
        make the channels' noises correlated as `correlation` (data, data) says (kept fixed)."""
        if self.noise_scale is None:
            raise ValueError("this generator has no observation noise (model.obs_noise 0)")
        start = scale.to(self.noise_scale).clamp_min(1e-3)
        with torch.no_grad():
            self.noise_scale.copy_(start + torch.log(-torch.expm1(-start)))  # softplus^-1
            if correlation is not None:
                eye = torch.eye(correlation.size(0), dtype=torch.float64)
                mix = torch.linalg.cholesky(correlation.double() * (1 - 1e-4) + 1e-4 * eye)
                self.noise_mix.copy_(mix / mix.norm(dim=1, keepdim=True))  # unit rows: scale stays the spread

    def quiet(self, quiet: torch.Tensor) -> None:
        """No observation noise on the data channels where `quiet` (data,) is true: their rows of the
        noises' mix are zero (kept with the weights, and in an export), so their scales do nothing."""
        if self.noise_scale is None:
            raise ValueError("this generator has no observation noise (model.obs_noise 0)")
        with torch.no_grad():
            self.noise_mix.mul_((~quiet.to(torch.bool)).to(self.noise_mix.dtype).unsqueeze(1))

    def hold(self, held: torch.Tensor) -> None:
        """Hold the data channels where `held` (data,) is true at 0 (in normalised units): their
        read-out rows are zeroed and kept at zero (their gradients are masked), so every generated
        value of such a channel is exactly 0.

        Why: a channel the data hold constant (an adjusted close always equal to the close, as a ratio
        to it) normalises to exactly 0; a generator that comes only near it leaves a trace that any
        classifier of normalised paths finds at once, however small it is in data units."""
        keep = (~held.to(torch.bool)).to(self.readout.weight.dtype)
        self.keep.copy_(keep)  # also silences such a channel's observation noise
        with torch.no_grad():
            self.readout.weight.mul_(keep.unsqueeze(1))
            self.readout.bias.mul_(keep)
        self.readout.weight.register_hook(lambda grad: grad * keep.unsqueeze(1))
        self.readout.bias.register_hook(lambda grad: grad * keep)

    def forward(
        self, ts: torch.Tensor, batch_size: int, generator: torch.Generator, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        # ts: (time,), cond: (batch, cond_width) for a conditional generator -> (batch, time, 1 + data)
        device = ts.device
        init_noise = torch.randn(batch_size, self.cfg.initial_noise_size, generator=generator, device="cpu").to(device)
        if (cond is None) != (self.cond_width == 0):
            raise ValueError(f"this generator takes {self.cond_width} condition inputs; got {cond is not None}")
        self.func.condition = cond
        x0 = self.initial(init_noise if cond is None else torch.cat([init_noise, cond], dim=1))
        self.func.time_scale = 1.0 / float(ts[-1]) if self.cfg.unit_time else 1.0
        if self.cfg.adjoint and torch.is_grad_enabled():
            # Only a backward pass needs the adjoint; generating without gradients (evaluation,
            # sampling, a critic step's fakes) takes the plain loop below: the same scheme.
            xs = self._solve_adjoint(x0, ts, generator)
        else:
            # Backpropagation through the solver: the same scheme as torchsde's, without its
            # per-step overhead (infgan/models/solver.py), increments drawn once from `generator`.
            grid = grid_for(ts, self.cfg.dt)
            dw = brownian_increments(grid, batch_size, self.cfg.noise_size, generator, x0.dtype, device)
            field = self.func.on_grid(grid.times.to(x0.dtype))
            xs = grid.at_outputs(reversible_heun(field, x0, grid, dw))
        ys = self.readout(xs.transpose(0, 1))  # (batch, time, data)
        if self.noise_scale is not None:
            # drawn after the Brownian increments, so a run without it draws exactly as before
            eps = torch.randn(ys.shape, generator=generator, device="cpu", dtype=ys.dtype).to(device)
            ys = ys + (eps @ self.noise_mix.T) * (nn.functional.softplus(self.noise_scale) * self.keep)
        return torch.cat([ts.unsqueeze(0).unsqueeze(-1).expand(batch_size, ts.size(0), 1), ys], dim=2)

    def _solve_adjoint(self, x0: torch.Tensor, ts: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The hidden states at `ts` (time, batch, hidden), by torchsde with the reversible Heun adjoint."""
        batch_size, device = x0.size(0), x0.device
        # The Brownian Interval (NeurIPS 2021) samples and caches increments on demand, with
        # the seed drawn from our own generator so that runs and resumes are reproducible.
        entropy = int(torch.randint(0, 2**31 - 1, (), generator=generator))
        bm = torchsde.BrownianInterval(
            t0=ts[0],
            t1=ts[-1],
            size=(batch_size, self.cfg.noise_size),
            dtype=x0.dtype,
            device=device,
            entropy=entropy,
            dt=self.cfg.dt,
        )
        # Reversible Heun: algebraically reversible, so the adjoint reconstructs the forward
        # states exactly instead of approximately, at one vector field evaluation per step.
        return torchsde.sdeint_adjoint(
            self.func, x0, ts, bm=bm, method="reversible_heun", dt=self.cfg.dt, adjoint_method="adjoint_reversible_heun"
        )
