"""`sig_score`: the generator trained on the signature-kernel score alone, with no critic.

Non-adversarial training of a neural SDE (Issa, Horvath, Lemercier, Salvi, NeurIPS 2023): the loss
is the expected signature kernel score of the generated paths against each real batch
(`infgan/train/losses/sig_kernel.py`), a strictly proper scoring rule, so its minimum is the data's law
and there is no game to oscillate: one player descends one loss.
"""

from __future__ import annotations

import torch

from infgan.config import LossConfig
from infgan.data.dataset import Batch
from infgan.train.losses.base import DirectLoss, Shard
from infgan.train.losses.sig_kernel import SignatureScore


class SigScore(DirectLoss):
    """The signature kernel score as the generator's whole loss."""

    def __init__(self, cfg: LossConfig):
        super().__init__(cfg)
        self.score = SignatureScore(cfg)

    def objective(self, fake: torch.Tensor, batch: Batch, shard: Shard, seed: int) -> torch.Tensor:
        return self.score(fake, batch, shard, seed)

    def per_path(self, sample: torch.Tensor, paths: torch.Tensor) -> torch.Tensor:
        return self.score.per_path(sample, paths)
