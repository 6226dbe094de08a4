"""`val/disc`, the discriminative score (TimeGAN's definition): train a classifier to tell real from
generated paths and report |test accuracy - 0.5| (0: indistinguishable, 0.5: always told apart).

Fixed protocol, so that scores compare across runs: equal numbers of real and generated paths
(the smaller of the two sets), 20 % of each held out for testing, the `SequenceModel` of
`sequence.py` read out at the last time step, 300 Adam steps of batch 128 at learning rate 1e-2,
binary cross-entropy; everything drawn from the given seed. `with_error` combines repeats of it
over classifier seeds and gives the standard error (`val/disc_se`): at small held-out sets the
real-vs-real floor is itself noise (0.25 at 32 held-out paths), which a number alone hides.

The classifier sees each channel's increments beside its values. At the same cost this is what
makes the score stable and sharp: on the default OU run's generator (1000 steps) values alone
gave 0.056 or 0.200 depending on the seed, values and increments 0.429 and 0.449; real against
real stayed at 0.00-0.02 either way (docs/metrics.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn.functional import binary_cross_entropy_with_logits

from infgan.metrics.sequence import model_inputs, seeded_model, share_missingness, train

STEPS = 300
TEST_FRACTION = 0.2


def discriminative_score(real: torch.Tensor, fake: torch.Tensor, t_end: float, seed: int) -> float:
    """|accuracy - 0.5| of a classifier of real (label 1) vs `fake` (label 0) paths (n, time, 1 + channels)."""
    acc, _ = accuracy(real, fake, t_end, seed)
    return abs(acc - 0.5)


def with_error(runs: Sequence[tuple[float, int]]) -> tuple[float, float]:
    """`val/disc` and its standard error from repeated classifiers' (test accuracy, test paths)
    (`accuracy` at seeds s, s + 1, ...: their own splits and weights).

    The value is the classifiers' mean |accuracy - 0.5|. Its standard error is
    sqrt(v / repeats), v the larger of the classifiers' sample variance and the binomial variance of
    one test accuracy, acc (1 - acc) / (test paths): with few held-out paths the test split alone
    makes one classifier's accuracy swing by that much, whatever the seeds agree on.
    """
    repeats = len(runs)
    scores = [abs(acc - 0.5) for acc, _ in runs]
    binomial = sum(acc * (1 - acc) / n for acc, n in runs) / repeats
    mean = sum(scores) / repeats
    spread = sum((x - mean) ** 2 for x in scores) / (repeats - 1) if repeats > 1 else 0.0
    return mean, math.sqrt(max(spread, binomial) / repeats)


def test_paths(n_real: int, n_fake: int) -> int:
    """How many paths a classifier is tested on, for sets of these sizes."""
    return 2 * max(1, round(TEST_FRACTION * min(n_real, n_fake)))


SE_GOAL = 0.05  # the standard error below which a val/disc is worth reading to two decimals


def small_held_out(n_held_out: int) -> str | None:
    """One line when `n_held_out` paths leave one classifier's val/disc with a standard error of
    SE_GOAL or more (at accuracy 0.5, where it is largest); None when they are enough."""
    se = math.sqrt(0.25 / test_paths(n_held_out, n_held_out))
    if se < SE_GOAL:
        return None
    need = next(n for n in range(n_held_out, 100 * n_held_out + 1000) if math.sqrt(0.25 / test_paths(n, n)) < SE_GOAL)
    return (
        f"{n_held_out} held-out paths test the val/disc classifier on {test_paths(n_held_out, n_held_out)} paths: "
        f"its standard error is about {se:.2f}, so values (and the floor) within about {2 * se:.2f} of each other "
        f"are alike; {need} or more held-out paths bring it under {SE_GOAL} (data.size, data.val_fraction)"
    )


def accuracy(real: torch.Tensor, fake: torch.Tensor, t_end: float, seed: int) -> tuple[float, int]:
    """A classifier's test accuracy and the number of test paths."""
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
        correct = ((model(x[test])[:, -1, 0] > 0).float() == y[test]).float().mean().item()
    return correct, test.numel()
