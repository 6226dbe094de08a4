"""The signature-kernel score of generated paths against real ones, as a training loss.

For a generator's law P and a real path y, the signature kernel score is
phi(P, y) = E k(X, X') - 2 E k(X, y) (X, X' independent draws of P, k the signature kernel), a
strictly proper scoring rule: its expectation over real paths y ~ Q is smallest exactly at P = Q,
where it equals -E k(Y, Y'), so it is the squared kernel MMD between P and Q less a constant of
the data (Issa, Horvath, Lemercier, Salvi, NeurIPS 2023). Its unbiased estimate over m generated
and n real paths is

    1 / (m (m - 1)) * sum_{i != j} k(x_i, x_j)  -  2 / (m n) * sum_{i, j} k(x_i, y_j).

Kernels come from `pysiglib` (the PDE solution of the signature kernel, with its gradient), on its
CUDA path when the paths are on a GPU and pysiglib's CUDA plugin is installed (`pysiglib[cuda]`);
otherwise the paths are copied to the CPU for the kernel.

What the kernel sees of a path (batch, time, 1 + channels), each choice a `loss.sig_*` key:
- gaps: a generated path takes the gaps of the real path it is paired with in the batch, filled
  linearly as that real path was (`fill_gaps`), so the kernel does not tell the two apart by the
  smoothing of the interpolation alone;
- points (`sig_points`): a random subset of the time points, the first always in, the same for
  real and generated paths and on every rank, drawn afresh each step (the kernel's cost grows with
  the square of the points; every lag is seen over the steps);
- time (`sig_time_aug`): the time channel, rescaled to [0, 1], kept as a channel, else dropped;
- values divided by the real batch's spread (each channel's standard deviation over every path and
  time of the batch), times `sig_scale`: the data are normalised by their starting values, and a
  process that spreads out (OU's variance grows tenfold) would otherwise leave an RBF kernel
  comparing points far apart, where it is flat and gives no gradient;
- a basepoint (`sig_basepoint`): the origin put before every path, so that the kernel sees where
  a path starts (a signature alone does not change when a path is translated);
- the static kernel (`sig_kernel`): RBF exp(-|a - b|^2 / (sig_sigma * channels)), or linear; `sig_dyadic_order`
  refines the PDE grid by 2^order per axis.

The cost: with `sig_partners` 0 every generated path is scored against every other and every real
one, a cost that grows with the square of the batch (two gram matrices of 128 x 128 PDE solutions a
step at the default batch). With K partners each generated path is scored against K other generated
paths and K real ones drawn afresh each step (`infgan/train/losses/partners.py`): unbiased still, at a
cost linear in the batch.
"""

from __future__ import annotations

import warnings

import torch

from infgan.config import LossConfig
from infgan.data.dataset import Batch, fill_gaps
from infgan.train.context import Shard
from infgan.train.losses.partners import draw_partners


class SignatureScore:
    """The estimator above with the kernel settings of a `LossConfig`."""

    def __init__(self, cfg: LossConfig):
        self.cfg = cfg

    def _static_kernel(self, channels: int):
        import pysiglib

        if self.cfg.sig_kernel == "rbf":
            # Per data channel: squared distances grow with the channels, and exp(-d2) of many would be 0.
            return pysiglib.RBFKernel(self.cfg.sig_sigma * channels)
        return pysiglib.LinearKernel()

    def points(self, t_size: int, g: torch.Generator) -> torch.Tensor:
        """The time indices the kernel sees this step: all, or the first and a sorted random subset
        drawn from `g`."""
        n = self.cfg.sig_points
        if n == 0 or n >= t_size:
            return torch.arange(t_size)
        rest = torch.randperm(t_size - 1, generator=g)[: n - 1] + 1
        return torch.cat([torch.zeros(1, dtype=torch.long), rest.sort().values])

    def inputs(self, paths: torch.Tensor, index: torch.Tensor, t_end: float, spread: torch.Tensor) -> torch.Tensor:
        """Kernel inputs (n, points [+ 1], [1 +] channels) of gap-free paths (n, time, 1 + channels),
        values divided by `spread` (channels,)."""
        x = paths[:, index.to(paths.device)]
        values = x[..., 1:] * (self.cfg.sig_scale / spread)
        if self.cfg.sig_time_aug:
            values = torch.cat([x[..., :1] / max(t_end, 1e-12), values], dim=-1)
        if self.cfg.sig_basepoint:
            values = torch.cat([torch.zeros_like(values[:, :1]), values], dim=1)
        return values.contiguous()

    def gram(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Signature kernels k(x_i, y_j) (n, m) of kernel inputs, with gradients."""
        from pysiglib.torch_api import sig_kernel_gram  # the autograd one (pysiglib's own is not)

        return self._kernel(sig_kernel_gram, x, y)

    def pairwise(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Signature kernels k(x_i, y_i) (n,) of kernel inputs paired row by row, with gradients."""
        from pysiglib.torch_api import sig_kernel

        return self._kernel(sig_kernel, x, y)

    def _kernel(self, fn, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        import pysiglib

        device = x.device
        if device.type == "cuda" and not pysiglib.BUILT_WITH_CUDA:
            _warn_cpu_once()
            x, y = x.cpu(), y.cpu()
        channels = max(1, x.size(-1) - int(self.cfg.sig_time_aug))
        static = self._static_kernel(channels)
        out = fn(x, y, dyadic_order=self.cfg.sig_dyadic_order, static_kernel=static, n_jobs=1)
        return _ContiguousGrad.apply(out).to(device)

    def __call__(self, fake: torch.Tensor, batch: Batch, shard: Shard, seed: int) -> torch.Tensor:
        """This rank's share of the estimated score of `fake` (its batch, time, 1 + channels) against
        the real `batch`, times the world size: the ranks' values average to the global batch's
        estimate, and so do their gradients (DDP averages gradients over ranks)."""
        real = batch.coeffs
        if batch.observed is not None:  # the generated paths take their paired real paths' gaps
            values = fill_gaps(fake[..., 1:], batch.observed[: fake.size(0)])
            fake = torch.cat([fake[..., :1], values], dim=-1)
        g = torch.Generator().manual_seed(seed)  # the same draws on every rank
        index = self.points(fake.size(1), g)
        t_end = float(fake[0, -1, 0].detach())
        reals = shard.gather(real.detach())
        spread = channel_spread(reals)
        x = self.inputs(fake, index, t_end, spread)
        xs = shard.gather(x)  # every rank's generated paths, this rank's rows first at rank * b
        ys = self.inputs(reals, index, t_end, spread)
        b, m, n = x.size(0), xs.size(0), ys.size(0)
        k = self.cfg.sig_partners
        if k:
            others, chosen = draw_partners(m, n, k, 1, g)
            mine = slice(shard.rank * b, (shard.rank + 1) * b)  # this rank's rows of the global draw
            rows = x[torch.arange(b, device=x.device).repeat_interleave(k)]  # a copy: pysiglib clones views
            same = self.pairwise(rows, xs[others[0, mine].reshape(-1).to(xs.device)]).sum()
            cross = self.pairwise(rows, ys[chosen[0, mine].reshape(-1).to(ys.device)]).sum()
            share = (same - 2.0 * cross) / (m * k)
            return share * shard.world_size
        same = self.gram(x, xs)  # (b, m)
        own = torch.arange(b, device=same.device)
        off_diagonal = same.sum() - same[own, shard.rank * b + own].sum()  # k(x_i, x_i) left out
        cross = self.gram(x, ys).sum()
        share = off_diagonal / (m * (m - 1)) - 2.0 * cross / (m * n)
        return share * shard.world_size

    @torch.no_grad()
    def per_path(self, sample: torch.Tensor, paths: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """phi(P, y) (n,) for each gap-free path y of `paths` (n, time, 1 + channels), with P the
        generated `sample` (m, time, 1 + channels): low for paths typical of the generator's law.
        The kernel sees every point (a subset, as training draws them, ranked a jump in the second
        half of OU paths no lower than the clean path: the kernel is flat far from the sample)."""
        index = torch.arange(sample.size(1))
        t_end = float(sample[0, -1, 0].detach())
        spread = channel_spread(sample)
        x = self.inputs(sample, index, t_end, spread)
        xx = self.gram(x, x)
        m = x.size(0)
        first = (xx.sum() - xx.diagonal().sum()) / (m * (m - 1))
        parts = [
            self.gram(x, self.inputs(paths[i : i + chunk], index, t_end, spread))
            for i in range(0, paths.size(0), chunk)
        ]
        return first - 2.0 * torch.cat(parts, dim=1).mean(dim=0)


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward hands on a contiguous gradient. Why: a sum's gradient arrives as an
    expanded view, which pysiglib's backward copies with a UserWarning printed in every trial's log."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous()


def channel_spread(paths: torch.Tensor) -> torch.Tensor:
    """Each value channel's standard deviation (channels,) over every path and time of `paths`."""
    values = paths[..., 1:].detach()
    return values.reshape(-1, values.size(-1)).std(dim=0).clamp_min(1e-6)


_warned = False


def _warn_cpu_once() -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            "pysiglib has no CUDA plugin here: signature kernels are computed on the CPU "
            "(pip install 'pysiglib[cuda]' for the GPU path)",
            stacklevel=3,
        )
