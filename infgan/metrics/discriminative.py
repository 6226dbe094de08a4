"""`val/disc`, the discriminative score (TimeGAN's definition): train a classifier to tell real from
generated paths and report |test accuracy - 0.5| (0: indistinguishable, 0.5: always told apart).

Fixed protocol, so that scores compare across runs: equal numbers of real and generated paths
(the smaller of the two sets), 20 % of each held out for testing, the `SequenceModel` of
`sequence.py` read out at the last time step, 300 Adam steps of batch 128 at learning rate 1e-2,
binary cross-entropy; everything drawn from the given seed.

The classifier sees each channel's increments beside its values. At the same cost this is what
makes the score stable and sharp: on the default OU run's generator (1000 steps) values alone
gave 0.056 or 0.200 depending on the seed, values and increments 0.429 and 0.449; real against
real stayed at 0.00-0.02 either way (docs/metrics.md).
"""

from __future__ import annotations

import torch
from torch.nn.functional import binary_cross_entropy_with_logits

from infgan.metrics.sequence import model_inputs, seeded_model, share_missingness, train

STEPS = 300
TEST_FRACTION = 0.2


def discriminative_score(real: torch.Tensor, fake: torch.Tensor, t_end: float, seed: int) -> float:
    """|accuracy - 0.5| of a classifier of real (label 1) vs `fake` (label 0) paths (n, time, 1 + channels)."""
    g = torch.Generator().manual_seed(seed)
    m = min(real.size(0), fake.size(0))
    real = real[torch.randperm(real.size(0), generator=g)[:m]]
    fake = share_missingness(real, fake[torch.randperm(fake.size(0), generator=g)[:m]], g)
    x = model_inputs(torch.cat([real, fake]), t_end, increments=True)
    y = torch.cat([torch.ones(m), torch.zeros(m)])
    n_test = max(1, round(TEST_FRACTION * m))
    order = [torch.randperm(m, generator=g), m + torch.randperm(m, generator=g)]  # per class: balanced split
    test = torch.cat([o[:n_test] for o in order])
    fit = torch.cat([o[n_test:] for o in order])
    model = seeded_model(seed, x.size(-1), 1)

    def loss_of(i: torch.Tensor) -> torch.Tensor:
        rows = fit[i]
        return binary_cross_entropy_with_logits(model(x[rows])[:, -1, 0], y[rows])

    train(model, loss_of, fit.numel(), STEPS, g)
    with torch.no_grad():
        accuracy = ((model(x[test])[:, -1, 0] > 0).float() == y[test]).float().mean().item()
    return abs(accuracy - 0.5)
