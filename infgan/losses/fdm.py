"""`fdm`: the generator trained by matching finite-dimensional distributions, with no critic.

After Zhang et al. (ICLR 2025): two processes whose joint laws at every pair of times agree are
alike in every two-time statistic (and equal in law when both are Markov), and a kernel score of
pairs costs linearly in the pairs, where the signature kernel's cost grows with the square of the
time points. Each step draws `loss.fdm_pairs` pairs of times s < s + k (the same on every rank):
the lag k log-uniform in 1 .. time - 1, so that one-step increments are matched as often as long
ones, and s uniform. Each generated pair is scored against the real pairs with the RBF kernel
score exp(-|a - b|^2 / (sig_sigma * channels)), in coordinates (X_0, X_s, X_{s+k} - X_s), each coordinate divided by
its spread over the real batch and times `sig_scale`.

Why those coordinates: they are a one-to-one linear map of (X_s, X_{s+k}), so the score stays
proper, but an increment is small beside the level it starts from (OU's one-step increments are a
tenth of its spread), and an RBF kernel on the raw pair is all but blind to how rough a path is.
Standardised separately, the level and the increment weigh alike.
"""

from __future__ import annotations

import math

import torch

from infgan.data.dataset import Batch, fill_gaps
from infgan.losses.base import DirectLoss
from infgan.train.context import Shard


class FDM(DirectLoss):
    """The kernel score of two-time marginals, averaged over random pairs of times."""

    def pairs(self, t_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`fdm_pairs` pairs of time indices (s, s + k), k log-uniform in 1 .. t_size - 1."""
        g = torch.Generator().manual_seed(seed)
        n = self.cfg.fdm_pairs
        u = torch.rand(n, generator=g, dtype=torch.float64)
        lag = torch.exp(u * math.log(t_size)).floor().long().clamp(1, t_size - 1)
        start = (torch.rand(n, generator=g, dtype=torch.float64) * (t_size - lag)).floor().long()
        return start, start + lag

    def kernel(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """k(a_i, b_j) (pairs, n, m) of points (pairs, n, d) and (pairs, m, d)."""
        d2 = a.square().sum(-1, keepdim=True) + b.square().sum(-1).unsqueeze(-2) - 2 * a @ b.transpose(-1, -2)
        d2 = d2.clamp_min(0)
        if self.cfg.fdm_kernel == "energy":
            # -|a - b|: the energy score (smoothed at 0, where |.| has no gradient).
            return -torch.sqrt(d2 + 1e-12)
        # Per data channel: a point has three coordinates per channel, and with many channels the
        # squared distance grows with them (six stock channels put it near 36, where exp(-d2) is 0).
        return torch.exp(-d2 / (self.cfg.sig_sigma * a.size(-1) / 3))

    def objective(self, fake: torch.Tensor, batch: Batch, shard: Shard, seed: int) -> torch.Tensor:
        values = fake[..., 1:]
        if batch.observed is not None:
            values = fill_gaps(values, batch.observed[: values.size(0)])
        s, t = self.pairs(values.size(1), seed)
        reals = shard.gather(batch.coeffs.detach())[..., 1:]

        def coordinates(v: torch.Tensor) -> torch.Tensor:  # (pairs, n, 2 * channels)
            return torch.cat([v[:, :1].expand(-1, s.numel(), -1), v[:, s], v[:, t] - v[:, s]], dim=-1).transpose(0, 1)

        y = coordinates(reals)
        scale = self.cfg.sig_scale / y.std(dim=1, keepdim=True).clamp_min(1e-6)  # (pairs, 1, 2 * channels)
        x = coordinates(values) * scale
        ys = y * scale
        xs = shard.gather(x.transpose(0, 1)).transpose(0, 1)
        b, m, n = x.size(1), xs.size(1), ys.size(1)
        same = self.kernel(x, xs)  # (pairs, b, m)
        own = torch.arange(b, device=x.device)
        off_diagonal = same.sum(dim=(1, 2)) - same[:, own, shard.rank * b + own].sum(dim=1)
        cross = self.kernel(x, ys).sum(dim=(1, 2))
        share = off_diagonal / (m * (m - 1)) - 2.0 * cross / (m * n)
        return share.mean() * shard.world_size
