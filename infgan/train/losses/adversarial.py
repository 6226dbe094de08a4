"""The adversarial kinds. One sign convention for all of them: the critic (the GAN's discriminator) gives
*higher scores to real paths*, and each player *minimises* its own loss.

- `wgan_clip`: Wasserstein, critic_loss = E[D(fake)] - E[D(real)], generator_loss = -E[D(fake)];
  the Lipschitz constraint comes from careful clipping (the reference, Kidger et al. 2021).
- `wgan_gp`: the same plus `gp_weight * E[(|grad D(x_hat)| - 1)^2]` on random interpolates x_hat of
  real and fake paths (Gulrajani et al. 2017); no clipping.
- `gan`: the original GAN loss with the non-saturating generator loss:
  critic_loss = E[softplus(-D(real))] + E[softplus(D(fake))], generator_loss = E[softplus(-D(fake))].
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.functional import softplus

from infgan.train.losses.base import AdversarialLoss


class NonSaturating(AdversarialLoss):
    """`gan`: the original GAN loss, non-saturating for the generator."""

    def losses(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        critic = softplus(-real_scores).mean() + softplus(fake_scores).mean()
        return critic, softplus(-fake_scores).mean()


class _Wasserstein(AdversarialLoss):
    """The Wasserstein losses; the critic's Lipschitz constraint is the subclass's."""

    zero_sum = True

    def losses(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return fake_scores.mean() - real_scores.mean(), -fake_scores.mean()


class WassersteinClip(_Wasserstein):
    """`wgan_clip`: Wasserstein with careful clipping of the critic's weights."""

    def after_critic_step(self, critic: nn.Module) -> None:
        critic.clip_weights()  # type: ignore[operator]


class WassersteinGP(_Wasserstein):
    """`wgan_gp`: Wasserstein with a gradient penalty on interpolates instead of clipping."""

    critic_adjoint = False

    def extra_inputs(self, real: torch.Tensor, fake: torch.Tensor, rng: torch.Generator) -> list[torch.Tensor]:
        """Random points on the segments between real and (detached) fake paths, requiring grad."""
        eps = torch.rand(real.size(0), 1, 1, generator=rng).to(real.device, real.dtype)
        return [(eps * real + (1 - eps) * fake.detach()).requires_grad_(True)]

    def penalty(self, scores: torch.Tensor, inputs: list[torch.Tensor]) -> torch.Tensor:
        """E[(|d score / d x_hat| - 1)^2] over the interpolates alone; keeps the graph for the critic's backward."""
        # The gradient is taken with respect to the interpolates themselves, not the whole batch the
        # critic scored: the real and fake rows have no gradient, and averaging them in would add
        # (0 - 1)^2 for each and dilute the penalty to a third.
        (grads,) = torch.autograd.grad(scores.sum(), inputs[0], create_graph=True)
        return ((grads.flatten(1).norm(dim=1) - 1) ** 2).mean()
