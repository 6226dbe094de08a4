"""`val/pred`, the predictive score: train on synthetic, test on real (TSTR).

A `SequenceModel` learns to predict every channel's next observation from the path so far, on
generated paths; its mean absolute error on the real held-out paths (observed targets only, in
normalised units) is `val/pred`. The same model trained on real training paths gives the
reference (TRTR, `val/pred_trtr`, computed once per run with the floors), and
`val/pred_ratio` = TSTR / TRTR: 1.0 means generated data is as useful for this task as real data.
Unlike TimeGAN's version (one channel predicted from the others), it works with one channel.
Fixed protocol: 200 Adam steps of batch 128 at learning rate 1e-2; everything drawn from the seed.
"""

from __future__ import annotations

import torch

from infgan.metrics.sequence import model_inputs, seeded_model, train

STEPS = 200


def _masked_mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    seen = ~torch.isnan(target)
    return (pred[seen] - target[seen]).abs().mean() if seen.any() else pred.sum() * 0


def predictive_mae(train_paths: torch.Tensor, test_paths: torch.Tensor, t_end: float, seed: int) -> float:
    """MAE on `test_paths` of a next-step predictor trained on `train_paths` (both (n, time, 1 + channels))."""
    g = torch.Generator().manual_seed(seed)
    x = model_inputs(train_paths, t_end)
    target = train_paths[:, 1:, 1:].float()
    model = seeded_model(seed, x.size(-1), target.size(-1))

    def loss_of(i: torch.Tensor) -> torch.Tensor:
        return _masked_mae(model(x[i, :-1]), target[i])

    train(model, loss_of, x.size(0), STEPS, g)
    with torch.no_grad():
        return _masked_mae(model(model_inputs(test_paths, t_end)[:, :-1]), test_paths[:, 1:, 1:].float()).item()
