"""infgan's reversible Heun loop against torchsde and torchcde: same values and gradients on the same
Brownian sample and the same control path, on grids that hit the output times and grids that do not."""

from __future__ import annotations

import pytest
import torch
import torchcde
import torchsde

from infgan.models import Critic, Generator
from infgan.models.solver import Grid, reversible_heun

from conftest import tiny

TOL = 1e-5


SMALL = ("model.hidden_size=6", "model.mlp_size=8", "model.noise_size=3")
# Beyond the sizes where fused_on_grid goes block-diagonal and Contraction sums by a matrix product.
LARGE = ("model.hidden_size=40", "model.mlp_size=64", "model.num_layers=2", "model.noise_size=4")


def _model_cfg(dt: float, sizes=SMALL):
    return tiny(*sizes, f"model.dt={dt}").model


def _grads(loss: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, params))


@pytest.mark.parametrize(
    "ts, dt, sizes",
    [
        (torch.arange(9.0), 1.0, SMALL),  # the data's grid: one step per interval
        (torch.arange(9.0), 0.25, SMALL),  # several steps per interval
        (torch.tensor([0.0, 0.7, 1.1, 2.9, 3.0, 4.6]), 0.5, SMALL),  # irregular: outputs between steps
        (torch.arange(9.0), 1.0, LARGE),
    ],
)
def test_generator_solve_matches_torchsde_values_and_gradients(ts, dt, sizes):
    torch.manual_seed(0)
    gen = Generator(2, _model_cfg(dt, sizes))
    batch = 5
    x0 = torch.randn(batch, gen.cfg.hidden_size, requires_grad=True)
    bm = torchsde.BrownianInterval(t0=ts[0], t1=ts[-1], size=(batch, gen.cfg.noise_size), entropy=3, dt=dt)
    params = [x0, *gen.func.parameters()]

    theirs = torchsde.sdeint(gen.func, x0, ts, bm=bm, method="reversible_heun", dt=dt)
    grid = Grid(ts, dt)
    dw = torch.stack([bm(grid.times[k], grid.times[k + 1]) for k in range(grid.steps)])
    ours = grid.at_outputs(reversible_heun(gen.func.on_grid(grid.times), x0, grid, dw))

    assert ours.shape == theirs.shape == (len(ts), batch, gen.cfg.hidden_size)
    torch.testing.assert_close(ours, theirs, rtol=TOL, atol=TOL)
    weights = torch.randn_like(ours)  # a loss that involves every output
    for a, b in zip(_grads((ours * weights).sum(), params), _grads((theirs * weights).sum(), params)):
        torch.testing.assert_close(a, b, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("dt, sizes", [(1.0, SMALL), (0.5, SMALL), (0.3, SMALL), (1.0, LARGE)])
def test_critic_solve_matches_torchcde_values_and_gradients(dt, sizes):
    torch.manual_seed(1)
    critic = Critic(2, _model_cfg(dt, sizes))
    coeffs = torch.randn(4, 7, 3).cumsum(1).requires_grad_(True)
    params = [coeffs, *critic.parameters()]

    path = torchcde.LinearInterpolation(coeffs)
    critic.func.time_scale = 1.0 / float(path.interval[-1]) if critic.cfg.unit_time else 1.0
    h0 = critic.initial(path.evaluate(path.interval[0]))
    hs = torchcde.cdeint(
        path, critic.func, h0, path.interval, adjoint=False, method="reversible_heun", backend="torchsde", dt=dt
    )
    theirs = critic.readout(hs[:, -1]).squeeze(-1)
    ours = critic(coeffs, adjoint=False)

    torch.testing.assert_close(ours, theirs, rtol=TOL, atol=TOL)
    for a, b in zip(_grads(ours.sum(), params), _grads(theirs.sum(), params)):
        torch.testing.assert_close(a, b, rtol=TOL, atol=TOL)


def test_generated_paths_depend_on_the_generator_seed_only():
    gen = Generator(1, _model_cfg(1.0))
    ts = torch.arange(6.0)
    a = gen(ts, 3, torch.Generator().manual_seed(5))
    b = gen(ts, 3, torch.Generator().manual_seed(5))
    c = gen(ts, 3, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (3, 6, 2) and torch.equal(a[..., 0], ts.expand(3, 6))


def test_grid_follows_torchsde_steps():
    grid = Grid(torch.tensor([0.0, 0.7, 2.0]), 0.5)
    torch.testing.assert_close(grid.times, torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0]))
    assert grid.outputs[1] == (1, 2, pytest.approx(0.4)) and not grid.on_grid
    assert Grid(torch.arange(4.0), 1.0).on_grid
