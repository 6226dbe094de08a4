"""What the path-level metrics share: paths made comparable, and the small sequence model they train.

Real paths have missing entries and generated ones do not, so a classifier could tell them apart
by the gaps alone. Every path-level metric therefore first gives the generated paths the
missingness of real ones (`share_missingness`: each generated path takes the NaN pattern of a
randomly paired real path; a second real set, for a floor, keeps its own gaps), then fills both
the same causal way (`model_inputs`: carry the last
observation forward; before the first one, 0, the normalised mean). Time stays an input channel,
rescaled to [0, 1].

The model is one GRU layer (hidden 16) with a linear read-out at every time step: small enough
to train in seconds on one CPU thread, and the classifier of TimeGAN's discriminative score.
Why a GRU rather than a neural CDE: the inputs are already on the evaluation grid with gaps
filled, the CDE would cost an ODE solve per batch, and a GRU is the model the published
discriminative and predictive scores use, so figures stay comparable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from torch import nn

HIDDEN = 16
LEARNING_RATE = 1e-2
BATCH = 128


def share_missingness(real: torch.Tensor, fake: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """`fake` (m, time, 1 + channels) with NaN wherever a randomly paired real path is unobserved.

    A set that has gaps of its own (a second real set, for a floor) keeps them as they are.
    """
    if bool(torch.isnan(fake[..., 1:]).any()):
        return fake
    n, m = real.size(0), fake.size(0)
    pair = torch.randperm(n, generator=g).repeat((m + n - 1) // n)[:m]
    out = fake.clone()
    out[..., 1:][torch.isnan(real[pair, :, 1:])] = float("nan")
    return out


def model_inputs(paths: torch.Tensor, t_end: float, increments: bool = False) -> torch.Tensor:
    """Float32 model inputs: time / t_end, then each channel's last observation carried forward (0 before any).

    With `increments`, each filled channel's step-to-step increment follows (0 at the first step).
    """
    values = paths[..., 1:]
    observed = ~torch.isnan(values)
    t_size = values.size(1)
    idx = torch.arange(t_size).view(1, t_size, 1).expand_as(values)
    last = torch.where(observed, idx, -1).cummax(dim=1).values
    filled = torch.nan_to_num(values).gather(1, last.clamp_min(0))
    filled = torch.where(last >= 0, filled, torch.zeros_like(filled))
    parts = [paths[..., :1] / max(t_end, 1e-12), filled]
    if increments:
        parts.append(torch.diff(filled, dim=1, prepend=filled[:, :1]))
    return torch.cat(parts, dim=-1).float()


class SequenceModel(nn.Module):
    """One GRU layer and a linear read-out at every time step."""

    def __init__(self, inputs: int, outputs: int, hidden: int = HIDDEN):
        super().__init__()
        self.gru = nn.GRU(inputs, hidden, batch_first=True)
        self.readout = nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (batch, time, inputs) -> (batch, time, outputs)
        return self.readout(self.gru(x)[0])


def train(
    model: nn.Module, loss_of: Callable[[torch.Tensor], torch.Tensor], n: int, steps: int, g: torch.Generator
) -> nn.Module:
    """Adam on minibatches of row indices drawn from range(n) by `g`; `loss_of(indices)` gives the loss."""
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    for _ in range(steps):
        loss = loss_of(torch.randint(0, n, (min(BATCH, n),), generator=g))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


# Seeding goes through torch's one global generator: one model at a time, whatever thread asks.
_SEEDING = threading.Lock()


def seeded_model(seed: int, inputs: int, outputs: int) -> SequenceModel:
    """A SequenceModel whose initial weights depend on `seed` only (the global RNG is left as it was)."""
    with _SEEDING, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SequenceModel(inputs, outputs)


def side_by_side(calls: Sequence[Callable[[], Any]], threads: int) -> list[Any]:
    """Each call's result, in order; with `threads` above 1, up to that many calls run at once.

    Why threads: each call trains a small model with its own seeded generator, and a step's time
    goes to PyTorch's operators (the GRU's whole recurrence is one), which run without Python's
    lock, so on free cores the calls overlap almost fully, and their values are those of one after
    another (each operator runs single-threaded in the calling thread either way).
    """
    if threads <= 1 or len(calls) <= 1:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=min(threads, len(calls))) as pool:
        return list(pool.map(lambda call: call(), calls))


class Stacked(nn.Module):
    """Several one-layer GRUs with linear read-outs (modules with `.gru` and `.readout`, each with its
    own weights), trained side by side as one model.

    Why: the classifiers behind a score's repeats (TimeGAN's 10, `val/disc`'s 2 or 3) are small, and
    at these sizes a step's time goes to per-operation overhead, not arithmetic: stacked, all repeats
    step in about the time one did. The recurrence is PyTorch's GRU (`tests/test_timegan.py` checks it
    against `nn.GRU`); Adam is elementwise, so one Adam over the stacked weights is each repeat's own,
    and the summed loss gives each repeat its own gradient.
    """

    def __init__(self, models: Sequence[Any]):
        super().__init__()

        def stack(get: Callable[[Any], torch.Tensor]) -> nn.Parameter:
            return nn.Parameter(torch.stack([get(m).detach().clone() for m in models]))

        self.w_ih = stack(lambda m: m.gru.weight_ih_l0.T)  # (R, inputs, 3 hidden)
        self.w_hh = stack(lambda m: m.gru.weight_hh_l0.T)  # (R, hidden, 3 hidden)
        self.b_ih = stack(lambda m: m.gru.bias_ih_l0.unsqueeze(0))  # (R, 1, 3 hidden)
        self.b_hh = stack(lambda m: m.gru.bias_hh_l0.unsqueeze(0))
        self.w_out = stack(lambda m: m.readout.weight.T)  # (R, hidden, outputs)
        self.b_out = stack(lambda m: m.readout.bias.unsqueeze(0))  # (R, 1, outputs)

    def forward(self, x: torch.Tensor, which: slice = slice(None)) -> torch.Tensor:
        # x: (R, batch, time, inputs) -> (R, batch, time, outputs), R the repeats `which` picks
        w_ih, w_hh, b_ih, b_hh = self.w_ih[which], self.w_hh[which], self.b_ih[which], self.b_hh[which]
        r, b, t, _ = x.shape
        hidden = w_hh.size(1)
        gates_x = (torch.bmm(x.reshape(r, b * t, -1), w_ih) + b_ih).view(r, b, t, 3 * hidden)
        h = x.new_zeros(r, b, hidden)
        states = []
        for k in range(t):
            gx = gates_x[:, :, k]
            gh = torch.baddbmm(b_hh, h, w_hh)
            reset = torch.sigmoid(gx[..., :hidden] + gh[..., :hidden])
            update = torch.sigmoid(gx[..., hidden : 2 * hidden] + gh[..., hidden : 2 * hidden])
            new = torch.tanh(gx[..., 2 * hidden :] + reset * gh[..., 2 * hidden :])
            h = (1 - update) * new + update * h
            states.append(h)
        out = torch.stack(states, dim=2).reshape(r, b * t, hidden)
        return torch.baddbmm(self.b_out[which], out, self.w_out[which]).view(r, b, t, -1)

    def one(self, r: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """Repeat `r`'s model: (n, time, inputs) -> (n, time, outputs)."""
        return lambda x: self(x.unsqueeze(0), slice(r, r + 1))[0]
