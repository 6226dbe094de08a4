"""TimeGAN's published discriminative and predictive scores, as its code defines them, so that
numbers compare with the published tables (TimeGAN, Diffusion-TS, ...) on the same data.

This is a named variant beside infgan's own `val/disc` and `val/pred` (which handle missing
values, irregular time and one-channel data, and share one classifier design). What TimeGAN's
code does, and this module repeats (docs/metrics.md, "TimeGAN's protocol"):

- Data: every window of the whole series (no held-out part), each channel min-max scaled over
  the whole series to [0, 1]; as many generated windows as real ones, on the same scale.
- Discriminative: a one-layer GRU with int(dim / 2) units read at the last step, a linear logit,
  sigmoid cross-entropy; real and generated windows each split 80/20 at random; 2000 Adam steps
  (learning rate 1e-3) on 128 real and 128 generated training windows drawn without replacement;
  the score is |accuracy - 0.5| on both test parts, thresholded at probability 0.5.
- Predictive: a one-layer GRU with int(dim / 2) units over the first dim - 1 channels, a sigmoid
  read-out at every step predicting the last channel one step ahead; 5000 Adam steps of 128
  generated windows, L1 loss; the score is the mean absolute error on every real window.
- TimeGAN's `main_timegan.py` repeats each score 10 times and reports the mean.

Weights start as TensorFlow 1's would (Glorot-uniform kernels, GRU gate biases 1, others 0).
One difference stays: TensorFlow's GRU cell applies the reset gate to the state before the
recurrent product, PyTorch's after it; both are standard GRUs.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.functional import binary_cross_entropy_with_logits

DISC_STEPS = 2000
PRED_STEPS = 5000
BATCH = 128
TRAIN_RATE = 0.8
REPEATS = 10  # TimeGAN's metric_iteration
# Data TimeGAN's code does not min-max scale: its sines are generated in [0, 1] (its loader scales files only).
UNSCALED = ("sines",)


class _GRU(nn.Module):
    """One GRU layer with int(dim / 2) units (at least 1) and a linear read-out, TensorFlow-1 initialised."""

    def __init__(self, inputs: int, hidden: int):
        super().__init__()
        self.gru = nn.GRU(inputs, hidden, batch_first=True)
        self.readout = nn.Linear(hidden, 1)
        w_ih, w_hh, b_ih, b_hh = (
            getattr(self.gru, n) for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
        )
        with torch.no_grad():
            # TensorFlow's GRU cell keeps one Glorot-uniform kernel over [input, state] for both gates
            # (fan-out 2 * hidden) and one for the candidate (fan-out hidden); gate biases start at 1.
            for gate, fan_out in enumerate((2 * hidden, 2 * hidden, hidden)):  # PyTorch's order: reset, update, new
                rows = slice(gate * hidden, (gate + 1) * hidden)
                bound = math.sqrt(6 / (inputs + hidden + fan_out))
                w_ih[rows].uniform_(-bound, bound)
                w_hh[rows].uniform_(-bound, bound)
                b_ih[rows].fill_(1.0 if gate < 2 else 0.0)
                b_hh[rows].zero_()
            nn.init.xavier_uniform_(self.readout.weight)
            self.readout.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (batch, time, inputs) -> (batch, time) logits
        return self.readout(self.gru(x)[0]).squeeze(-1)


def minmax(real: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Every set (n, time, channels) scaled by the real set's per-channel min and max, as TimeGAN scales."""
    flat = real.reshape(-1, real.size(-1))
    low, high = flat.min(0).values, flat.max(0).values
    return [(x - low) / (high - low + 1e-7) for x in (real, *others)]


def _model(inputs: int, dim: int, seed: int) -> _GRU:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _GRU(inputs, max(1, dim // 2))


def _batches(n: int, steps: int, g: torch.Generator):
    """Row indices of `steps` batches of BATCH rows, each drawn without replacement (TimeGAN's batch_generator)."""
    for _ in range(steps):
        yield torch.randperm(n, generator=g)[:BATCH]


def discriminative(real: torch.Tensor, fake: torch.Tensor, seed: int, steps: int = DISC_STEPS) -> float:
    """|accuracy - 0.5| of TimeGAN's post-hoc classifier; both sets (n, time, channels) already min-max scaled."""
    g = torch.Generator().manual_seed(seed)
    parts = []
    for x in (real, fake):
        order = torch.randperm(x.size(0), generator=g)
        cut = int(x.size(0) * TRAIN_RATE)
        parts.append((x[order[:cut]].float(), x[order[cut:]].float()))
    (real_fit, real_test), (fake_fit, fake_test) = parts
    model = _model(real.size(-1), real.size(-1), seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i, j in zip(_batches(real_fit.size(0), steps, g), _batches(fake_fit.size(0), steps, g)):
        loss = binary_cross_entropy_with_logits(
            model(real_fit[i])[:, -1], torch.ones(i.numel())
        ) + binary_cross_entropy_with_logits(model(fake_fit[j])[:, -1], torch.zeros(j.numel()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        right = (model(real_test)[:, -1] > 0).sum() + (model(fake_test)[:, -1] <= 0).sum()
    return abs(0.5 - right.item() / (real_test.size(0) + fake_test.size(0)))


def predictive(fit: torch.Tensor, test: torch.Tensor, seed: int, steps: int = PRED_STEPS) -> float:
    """TimeGAN's next-step MAE of the last channel: trained on `fit`, tested on `test` (min-max scaled)."""
    dim = fit.size(-1)
    if dim < 2:
        raise ValueError("TimeGAN's predictive score needs at least 2 channels (it predicts the last from the others)")
    g = torch.Generator().manual_seed(seed)
    fit, test = fit.float(), test.float()
    model = _model(dim - 1, dim, seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i in _batches(fit.size(0), steps, g):
        loss = (torch.sigmoid(model(fit[i, :-1, :-1])) - fit[i, 1:, -1]).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return (torch.sigmoid(model(test[:, :-1, :-1])) - test[:, 1:, -1]).abs().mean().item()


def _summary(runs: dict[str, list[float]]) -> dict[str, float]:
    out = {}
    for k, v in runs.items():
        t = torch.tensor(v, dtype=torch.float64)
        out[f"timegan/{k}"] = float(t.mean())
        out[f"timegan/{k}_std"] = float(t.std()) if len(v) > 1 else math.nan
    return out


def scores(
    real: torch.Tensor, fake: torch.Tensor, seed: int, repeats: int = REPEATS, progress=None, shrink: int = 1
) -> dict:
    """Both scores, mean and std over `repeats` seeds; `real` and `fake` min-max scaled, as many of each.
    `shrink` > 1 divides the classifiers' training steps (tests and toy runs only: not the protocol)."""
    runs: dict[str, list[float]] = {"disc": [], "pred": []}
    for r in range(repeats):
        runs["disc"].append(discriminative(real, fake, seed + 1000 * r, DISC_STEPS // shrink))
        runs["pred"].append(predictive(fake, real, seed + 1000 * r, PRED_STEPS // shrink))
        if progress is not None:
            progress()
    return _summary(runs)


def protocol_floors(real: torch.Tensor, seed: int, repeats: int = REPEATS, progress=None, shrink: int = 1) -> dict:
    """The scores' real-data floors: discriminative between two random halves of the real windows,
    predictive trained and tested on the real windows (the papers' "original data" row)."""
    runs: dict[str, list[float]] = {"disc_floor": [], "pred_floor": []}
    for r in range(repeats):
        s = seed + 1000 * r
        half = torch.randperm(real.size(0), generator=torch.Generator().manual_seed(s))
        a, b = real[half[: real.size(0) // 2]], real[half[real.size(0) // 2 :]]
        runs["disc_floor"].append(discriminative(a, b, s, DISC_STEPS // shrink))
        runs["pred_floor"].append(predictive(real, real, s, PRED_STEPS // shrink))
        if progress is not None:
            progress()
    return _summary(runs)
