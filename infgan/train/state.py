"""Everything a run carries between steps: models, optimisers, weight averages, step and RNG."""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from infgan.config import Config
from infgan.config.kinds import needs_critic
from infgan.models import Critic, Generator
from infgan.schedule import rate_factor


def make_optimizer(
    name: str, params: Any, lr: float, weight_decay: float, betas: tuple[float, float]
) -> torch.optim.Optimizer:
    """One player's optimiser by config name."""
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, betas=betas)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimiser {name!r}")


def rank_seed(seed: int, rank: int, stream: str) -> int:
    """An independent 63-bit seed for one named random stream of one rank."""
    words = [seed, rank] + [ord(c) for c in stream]
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0] >> 1)


@dataclass
class Progress:
    """The loop's bookkeeping, saved with every checkpoint so that a resumed run carries on exactly."""

    sums: dict[str, float] = field(default_factory=dict)  # this rank's diagnostics since the last evaluation
    count: int = 0  # steps in those sums
    best_score: float | None = None  # best finite val/score so far, and its step
    best_step: int | None = None
    wall_s: float = 0.0  # training wall time up to the last checkpoint
    resumed_from: list[int] = field(default_factory=list)  # the steps this run was resumed at
    first_score: float | None = None  # the first evaluation's val/score (the untrained generator's)

    def add(self, diagnostics: dict[str, float]) -> None:
        """Fold one step's diagnostics into the running sums."""
        for k, v in diagnostics.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1

    def take_means(self) -> dict[str, float]:
        """The mean of each diagnostic since the last call (`train/` names), resetting the sums."""
        means = {f"train/{k}": v / self.count for k, v in self.sums.items()} if self.count else {}
        self.sums, self.count = {}, 0
        return means

    def note_score(self, score: float, step: int) -> None:
        """Keep `score` as the best if it is finite and lower than the best so far (and the first)."""
        if self.first_score is None and math.isfinite(score):
            self.first_score = score
        if math.isfinite(score) and (self.best_score is None or score < self.best_score):
            self.best_score, self.best_step = score, step

    def to_dict(self) -> dict[str, Any]:
        """Plain values for a checkpoint."""
        return copy.deepcopy(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Progress:
        """What `to_dict` returned."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**copy.deepcopy({k: v for k, v in d.items() if k in names}))


# A checkpoint's names for the critic's parts before the critic had one name in code and config.
OLD_PART_NAMES = {"discriminator": "critic", "d_opt": "critic_opt", "d_avg": "critic_avg"}


@dataclass
class TrainState:
    """The mutable state of a run; `state_dict` holds all of it, so a resume is exact.

    A loss kind without a critic (`sig_score`) has no critic, no critic optimiser and no
    critic average: those are None, and a checkpoint holds none of them.
    """

    generator: Generator
    critic: Critic | None
    g_opt: torch.optim.Optimizer
    critic_opt: torch.optim.Optimizer | None
    g_avg: AveragedModel
    critic_avg: AveragedModel | None
    rng: torch.Generator  # this rank's batches, generator noise and GP interpolation
    step: int = 0
    progress: Progress = field(default_factory=Progress)

    def eval_generator(self) -> nn.Module:
        """The averaged generator once averaging has begun, else the trained one (never the initial)."""
        # Why the guard: the reference always evaluates the average, which for a run shorter
        # than the averaging start is the untrained initial model (docs/model.md).
        return self.g_avg.module if int(self.g_avg.n_averaged) > 0 else self.generator

    def eval_critic(self) -> nn.Module | None:
        """The critic matching `eval_generator`: the averaged one once averaging has begun (None: no critic)."""
        if self.critic is None or self.critic_avg is None:
            return None
        return self.critic_avg.module if int(self.critic_avg.n_averaged) > 0 else self.critic

    def update_averages(self) -> None:
        """Fold the current weights into the running (stochastic weight) averages."""
        self.g_avg.update_parameters(self.generator)
        if self.critic_avg is not None and self.critic is not None:
            self.critic_avg.update_parameters(self.critic)

    def _parts(self) -> dict[str, Any]:
        """The checkpointed objects with a state dict, by name (the critic's only when there is one)."""
        parts = {"generator": self.generator, "g_opt": self.g_opt, "g_avg": self.g_avg}
        critic = {"critic": self.critic, "critic_opt": self.critic_opt, "critic_avg": self.critic_avg}
        return {**parts, **{k: v for k, v in critic.items() if v is not None}}

    def state_dict(self) -> dict[str, Any]:
        """All state, CPU tensors, for a checkpoint."""
        out = {name: part.state_dict() for name, part in self._parts().items()}
        return {**out, "rng": self.rng.get_state(), "step": self.step, "progress": self.progress.to_dict()}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (also from a checkpoint that names the critic's parts as
        before they were renamed)."""
        sd = {OLD_PART_NAMES.get(name, name): value for name, value in sd.items()}
        for name, part in self._parts().items():
            part.load_state_dict(sd[name])
        self.rng.set_state(sd["rng"])
        self.step = int(sd["step"])
        self.progress = Progress.from_dict(sd["progress"])

    def set_rates(self, cfg: Config) -> None:
        """Give the optimisers the config's learning rates, as its schedule has them at this state's
        step, and weight decays (a loaded optimiser state brings the ones it was saved with: a PBT
        member exploring new rates must not keep its donor's)."""
        t = cfg.train
        factor = rate_factor(t.lr_schedule, self.step, t.steps, t.lr_final)
        groups = [(self.g_opt, t.generator_lr, t.generator_weight_decay)]
        if self.critic_opt is not None:
            groups.append((self.critic_opt, t.critic_lr, t.critic_weight_decay))
        for opt, lr, decay in groups:
            for group in opt.param_groups:
                group["lr"], group["weight_decay"] = lr * factor, decay


def init_state(
    cfg: Config,
    data_size: int,
    device: torch.device,
    rank: int = 0,
    cond_width: int = 0,
    held: torch.Tensor | None = None,
    noise: tuple[torch.Tensor, torch.Tensor] | None = None,
    quiet: torch.Tensor | None = None,
) -> TrainState:
    """Fresh models and optimisers; initial weights depend on the seed only, noise on (seed, rank).
    `held` (data,): channels the data hold constant, which the generator holds there (`Generator.hold`);
    `noise`: each channel's observation-noise scale to start at (data,) and their correlation (data, data)
    (`Generator.start_noise`); `quiet` (data,): channels with no observation noise (`Generator.quiet`)."""
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    generator = Generator(data_size, cfg.model, cond_width).to(device)
    if noise is not None:
        generator.start_noise(noise[0].to(device), noise[1].to(device))
    if quiet is not None and bool(quiet.any()):
        generator.quiet(quiet.to(device))
    if held is not None and bool(held.any()):
        generator.hold(held.to(device))
    t = cfg.train
    g_opt = make_optimizer(
        t.generator_optimizer, generator.parameters(), t.generator_lr, t.generator_weight_decay, t.adam_betas
    )
    rng = torch.Generator().manual_seed(rank_seed(cfg.seed, rank, "train"))
    # Why EMA as an option: the equal-weight average keeps early, poor weights for the rest of a
    # short run; an exponential one forgets them (docs/quality.md measures both).
    ema = {"multi_avg_fn": get_ema_multi_avg_fn(t.ema_decay)} if t.ema_decay > 0 else {}
    if not needs_critic(cfg.loss.kind):
        return TrainState(generator, None, g_opt, None, AveragedModel(generator, **ema), None, rng)
    critic = Critic(data_size, cfg.model, cond_width).to(device)
    critic_opt = make_optimizer(
        t.critic_optimizer,
        critic.parameters(),
        t.critic_lr,
        t.critic_weight_decay,
        t.adam_betas,
    )
    averages = AveragedModel(generator, **ema), AveragedModel(critic, **ema)
    return TrainState(generator, critic, g_opt, critic_opt, *averages, rng)
