"""Adversarial losses. One sign convention for all of them:

the critic (discriminator) gives *higher scores to real paths*; every function returns
`(critic_loss, generator_loss)` and each player *minimises* its own loss.

- `wgan_clip`: Wasserstein, critic_loss = E[D(fake)] - E[D(real)], generator_loss = -E[D(fake)];
  the Lipschitz constraint comes from careful clipping (the reference, Kidger et al. 2021).
- `wgan_gp`: the same plus `gp_weight * E[(|grad D(x_hat)| - 1)^2]` on random interpolates of
  real and fake paths (Gulrajani et al. 2017); no clipping.
- `gan`: the original GAN loss with the non-saturating generator loss:
  critic_loss = E[softplus(-D(real))] + E[softplus(D(fake))], generator_loss = E[softplus(-D(fake))].
"""

from __future__ import annotations

import torch
from torch.nn.functional import softplus

ZERO_SUM = ("wgan_clip", "wgan_gp")  # losses where generator_loss == -critic_loss as far as G sees


def adversarial_losses(
    kind: str, real_scores: torch.Tensor, fake_scores: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(critic_loss, generator_loss) from per-path scores (batch,), penalty excluded."""
    if kind in ZERO_SUM:
        return fake_scores.mean() - real_scores.mean(), -fake_scores.mean()
    if kind == "gan":
        return softplus(-real_scores).mean() + softplus(fake_scores).mean(), softplus(-fake_scores).mean()
    raise ValueError(f"unknown loss kind {kind!r}")


def gradient_penalty(scores: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """E[(|d score / d input| - 1)^2] over the batch; keeps the graph for the critic's backward."""
    # scores: (batch,) of the critic at `inputs` (batch, time, channels), which require grad.
    (grads,) = torch.autograd.grad(scores.sum(), inputs, create_graph=True)
    return ((grads.flatten(1).norm(dim=1) - 1) ** 2).mean()


def interpolate(real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random points on the segments between real and (detached) fake paths, requiring grad."""
    eps = torch.rand(real.size(0), 1, 1, generator=generator).to(real.device, real.dtype)
    return (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
