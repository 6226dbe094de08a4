"""`fdm`: the generator trained by matching finite-dimensional distributions, with no critic.

After Zhang et al. (ICLR 2025): two processes whose joint laws at every pair of times agree are
alike in every two-time statistic (and equal in law when both are Markov), and a kernel score of
pairs costs linearly in the pairs, where the signature kernel's cost grows with the square of the
time points. Each step draws `loss.fdm_pairs` pairs of times s < s + k (the same on every rank):
the lag k log-uniform in 1 .. time - 1, so that one-step increments are matched as often as long
ones, and s uniform. Each generated pair is scored against the real pairs with the RBF kernel
score exp(-|a - b|^2 / (sig_sigma * channels)), in coordinates (X_0, X_s, X_{s+k} - X_s), each coordinate divided by
its spread over the real batch and times `sig_scale`.

With `loss.fdm_times` 3 each draw is a triple s < t < u (the lags drawn one after the other, each
log-uniform in what is left of the series) in coordinates (X_0, X_s, X_t - X_s, X_u - X_t): a smooth
curve and a rough path with the same increments agree at every pair of times, not at every triple.

Why those coordinates: they are a one-to-one linear map of (X_s, X_{s+k}), so the score stays
proper, but an increment is small beside the level it starts from (OU's one-step increments are a
tenth of its spread), and an RBF kernel on the raw pair is all but blind to how rough a path is.
Standardised separately, the level and the increment weigh alike.

The cost: with `loss.fdm_partners` 0 every generated point is scored against every other and every
real one, a cost that grows with the square of the batch. With K partners, each generated point is
scored against K other generated points and K real ones drawn afresh each step and for each pair of
times (`infgan/train/losses/partners.py`): unbiased still, at a cost linear in the batch.
"""

from __future__ import annotations

import math

import torch

from infgan.data.dataset import Batch, fill_gaps
from infgan.train.context import Shard
from infgan.train.losses.base import DirectLoss
from infgan.train.losses.partners import draw_partners


class FDM(DirectLoss):
    """The kernel score of two-time (or three-time) marginals, averaged over random pairs (or triples)
    of times."""

    def times(self, t_size: int, seed: int | torch.Generator) -> tuple[torch.Tensor, ...]:
        """`fdm_pairs` draws of `fdm_times` time indices each, drawn by `seed` (or from a generator,
        which the draw moves on): pairs (s, s + k), k log-uniform in 1 .. t_size - 1; triples (s, s + k,
        s + k + l), k and then l log-uniform in what is left of the series, s uniform."""
        g = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
        n = self.cfg.fdm_pairs
        lags: list[torch.Tensor] = []
        room: int | torch.Tensor = t_size - 1  # steps left for the lags still to draw
        for later in range(self.cfg.fdm_times - 2, -1, -1):  # each later lag needs at least one step
            u = torch.rand(n, generator=g, dtype=torch.float64)
            longest = room - later
            if isinstance(longest, int):
                lag = torch.exp(u * math.log(longest + 1)).floor().long().clamp(1, longest)
            else:
                lag = torch.minimum(torch.exp(u * torch.log(longest.double() + 1)).floor().long(), longest).clamp_min(1)
            lags.append(lag)
            room = room - lag
        start = (torch.rand(n, generator=g, dtype=torch.float64) * (room + 1)).floor().long()
        return tuple(torch.cumsum(torch.stack([start, *lags]), dim=0))

    @torch.no_grad()
    def per_path(self, sample: torch.Tensor, paths: torch.Tensor) -> torch.Tensor:
        """phi(P, y) (n,) for each gap-free path y of `paths` (n, time, 1 + channels), with P the
        generated `sample`, averaged over a fixed set of pairs (every start, lags 1, 2, 4, ...),
        coordinates scaled by the sample's spread: low for paths typical of the generator's law.
        Under the energy kernel -|a - b| whatever `fdm_kernel` trained with: an RBF kernel is flat
        far from every generated path, so two paths far away in different ways would score alike
        (a jump of four spreads half-way along OU paths did not move an RBF score)."""
        t_size = sample.size(1)
        lags = [k for k in (2**i for i in range(t_size.bit_length())) if k < t_size]
        s = torch.cat([torch.arange(t_size - k) for k in lags])
        t = torch.cat([torch.arange(k, t_size) for k in lags])
        x = coordinates(sample[..., 1:], s, t)
        scale = self.cfg.sig_scale / spreads(x, sample[..., 1:])
        x = x * scale
        m = x.size(1)
        same = -torch.cdist(x, x)
        first = same.sum(dim=(1, 2)) / (m * (m - 1))  # (pairs,); the diagonal is 0
        y = coordinates(paths[..., 1:], s, t) * scale
        cross = -torch.cdist(x, y).mean(dim=1)  # (pairs, n)
        return (first[:, None] - 2.0 * cross).mean(dim=0)

    def kernel(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """k(a_i, b_j) (pairs, n, m) of points (pairs, n, d) and (pairs, m, d)."""
        return self.of_distance(squared_distances(a, b), a.size(-1))

    def of_distance(self, d2: torch.Tensor, dim: int) -> torch.Tensor:
        """The kernel as a function of the squared distance `d2` between points of `dim` coordinates."""
        if self.cfg.fdm_kernel == "energy":
            # -|a - b|: the energy score (smoothed at 0, where |.| has no gradient).
            return -torch.sqrt(d2 + 1e-12)
        # Per data channel: a point has three coordinates per channel, and with many channels the
        # squared distance grows with them (six stock channels put it near 36, where exp(-d2) is 0).
        return torch.exp(-d2 / (self.cfg.sig_sigma * dim / 3))

    def with_partners(self, a: torch.Tensor, b: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """k(a_i, b_index[p, i, j]) (pairs, n, partners) of points a (pairs, n, d), b (pairs, m, d)."""
        pairs, n, k = index.shape
        m, d = b.size(1), b.size(-1)
        if 2 * k * d >= m:
            # Many coordinates per point (stocks' 18, energy's 84): every point's products with every b
            # in one batched matrix product, then its partners' picked out, moves far less memory than
            # k gathered copies of its d coordinates (energy at batch 128: both partner terms, value and
            # gradient, in 24 ms against 335 ms; docs/model.md). Its cost grows with m², so past
            # 2 k d points the gather below takes over and the cost stays linear in the batch.
            return self.of_distance(squared_distances(a, b, index), d)
        rows = (index + torch.arange(pairs, device=index.device).view(pairs, 1, 1) * m).reshape(-1)
        # Coordinates first: the squared distance is then a sum over the leading dimension, which costs
        # PyTorch far less than a sum over a last dimension of 3 (OU's one channel).
        chosen = b.reshape(-1, d).t().index_select(1, rows).view(d, pairs, n, k)
        diff = a.permute(2, 0, 1).unsqueeze(-1) - chosen
        return self.of_distance((diff * diff).sum(0), d)

    def objective(self, fake: torch.Tensor, batch: Batch, shard: Shard, seed: int) -> torch.Tensor:
        values = fake[..., 1:]
        if batch.observed is not None:
            values = fill_gaps(values, batch.observed[: values.size(0)])
        g = torch.Generator().manual_seed(seed)
        drawn = self.times(values.size(1), g)
        reals = shard.gather(batch.coeffs.detach())[..., 1:]

        y = coordinates(reals, *drawn)
        scale = self.cfg.sig_scale / spreads(y, reals, self.cfg.fdm_floor)  # (pairs, 1, coordinates)
        x = coordinates(values, *drawn) * scale
        ys = y * scale
        xs = shard.gather(x.transpose(0, 1)).transpose(0, 1)
        b, m, n = x.size(1), xs.size(1), ys.size(1)
        if self.cfg.fdm_partners:
            others, real = draw_partners(m, n, self.cfg.fdm_partners, drawn[0].numel(), g)
            mine = slice(shard.rank * b, (shard.rank + 1) * b)  # this rank's rows of the global draw
            same = self.with_partners(x, xs, others[:, mine].to(x.device)).sum(dim=(1, 2))
            cross = self.with_partners(x, ys, real[:, mine].to(x.device)).sum(dim=(1, 2))
            share = (same - 2.0 * cross) / (m * self.cfg.fdm_partners)
            return share.mean() * shard.world_size
        full = self.kernel(x, xs)  # (pairs, b, m)
        own = torch.arange(b, device=x.device)
        off_diagonal = full.sum(dim=(1, 2)) - full[:, own, shard.rank * b + own].sum(dim=1)
        cross = self.kernel(x, ys).sum(dim=(1, 2))
        share = off_diagonal / (m * (m - 1)) - 2.0 * cross / (m * n)
        return share.mean() * shard.world_size


def squared_distances(a: torch.Tensor, b: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
    """|a_i - b_j|^2 (pairs, n, m) of points (pairs, n, d) and (pairs, m, d), from one batched product;
    with `index` (pairs, n, k) only the k columns it picks for each a_i (picked before the sums, which
    then run over k, not m)."""
    dot, norms = a @ b.transpose(-1, -2), b.square().sum(-1)
    if index is None:
        norms = norms.unsqueeze(-2)
    else:
        dot, norms = dot.gather(2, index), norms.gather(1, index.flatten(1)).view_as(index)
    return (a.square().sum(-1, keepdim=True) + norms - 2 * dot).clamp_min(0)


def coordinates(v: torch.Tensor, s: torch.Tensor, *later: torch.Tensor) -> torch.Tensor:
    """(X_0, X_s, X_t - X_s[, X_u - X_t]) of values (n, time, channels) at the pairs (s, t) or triples
    (s, t, u): (pairs, n, (2 + len(later)) * channels)."""
    points = [v[:, :1].expand(-1, s.numel(), -1), v[:, s]]
    for before, now in zip((s, *later), later, strict=False):
        points.append(v[:, now] - v[:, before])
    return torch.cat(points, dim=-1).transpose(0, 1)


def spreads(points: torch.Tensor, values: torch.Tensor, floor: float = 0.1) -> torch.Tensor:
    """Each coordinate's spread over the batch (pairs, 1, 3 * channels), at least `floor` times its
    channel's spread over every time: a coordinate the data hold constant (random walks all start at
    0) would otherwise be divided by almost nothing, every generated point would sit infinitely far
    from every real one, and an RBF kernel would give no gradient at all. The floor also decides how
    much a smooth channel's one-step increments weigh: on the energy data they are 1-5 % of their
    channel's spread, so at a floor of 0.1 they count a tenth to a half as much as a level does. A channel constant
    everywhere (an adjusted close always equal to the close, as a ratio to it) is compared in
    normalised units, where the generator learns to hold it at the data's value like any other."""
    spread = values.reshape(-1, values.size(-1)).std(dim=0)
    least = torch.where(spread > 1e-6, floor * spread, torch.ones_like(spread))
    return torch.maximum(points.std(dim=1, keepdim=True), least.repeat(points.size(-1) // spread.numel()))
