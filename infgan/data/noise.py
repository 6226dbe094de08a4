"""How much of each channel is white noise, and how the white noises of channels move together,
estimated from training windows: where `model.obs_noise_start: data` starts the generator's
observation noise (`Generator.start_noise`).

Why: a hidden SDE read out linearly makes paths about as smooth as its solver step. Channels that are
partly noise drawn afresh at each row (a bar's open against its close, a random number logged every
ten minutes) need an observation noise of their own, at their own level; started at one value for
every channel, Adadelta's tiny first steps leave the levels near it for hundreds of steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from infgan.data.files import DataError


def quiet_channels(noisy: Sequence[str], names: Sequence[str], source: str) -> torch.Tensor | None:
    """(channels,) true where a channel gets no observation noise: those not in `noisy`
    (`model.obs_noise_channels`; None when it is empty: every channel gets it)."""
    if not noisy:
        return None
    unknown = [n for n in noisy if n not in names]
    if unknown:
        raise DataError(
            f"{source}: model.obs_noise_channels: no channel '{unknown[0]}'; channels are {', '.join(names)}"
        )
    return torch.tensor([n not in noisy for n in names])


def white_noise(values: torch.Tensor) -> torch.Tensor:
    """(channels,) each channel's white-noise level in windows (n, time, channels), NaN where unobserved:
    the spread left once a smooth part is taken out, sqrt(g0 - g1^2 / g2) from the autocovariances g_k
    at lags 0-2 (pooled over windows, observed pairs only). A smooth signal's g1^2 / g2 is nearly g0
    (level about 0); white noise's g1 and g2 are about 0 (level its spread)."""
    centred = values - torch.nanmean(values.reshape(-1, values.size(-1)), dim=0)

    def cov(lag: int) -> torch.Tensor:
        a, b = centred[:, : centred.size(1) - lag], centred[:, lag:]
        both = ~(torch.isnan(a) | torch.isnan(b))
        return torch.where(both, a * b, 0).sum(dim=(0, 1)) / both.sum(dim=(0, 1)).clamp_min(1)

    g0, g1, g2 = cov(0), cov(1), cov(2)
    smooth = torch.where(g2 > 0, (g1**2 / g2.clamp_min(1e-12)).clamp(max=g0), torch.zeros_like(g0))
    return (g0 - smooth).clamp_min(0).sqrt()


def increment_correlation(values: torch.Tensor) -> torch.Tensor:
    """(channels, channels) the correlation of the windows' one-step increments (over increments seen in
    every channel; identity without any, 0 off the diagonal for a constant channel): where two channels
    are white noise, that of their noises (two copies of one random number: 1)."""
    inc = (values[:, 1:] - values[:, :-1]).reshape(-1, values.size(-1))
    inc = inc[~torch.isnan(inc).any(dim=1)]
    eye = torch.eye(values.size(-1), dtype=values.dtype)
    if inc.size(0) < 2 or values.size(-1) == 1:
        return eye
    return torch.where(eye.bool(), eye, torch.nan_to_num(torch.corrcoef(inc.T)))
