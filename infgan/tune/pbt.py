"""Population Based Training in an infgan sweep (`scheduler: pbt` or `pb2`).

GAN training wants hyperparameters that change as it goes; PBT (Jaderberg et al. 2017, a GAN among
its experiments) and PB2 (Parker-Holder et al. 2020, a bandit's choice instead of random
perturbation) ship in Ray Tune, and neither W&B sweeps nor Optuna has them. How infgan runs them:

- The population: `samples` members drawn from the space by Optuna's random sampler at the sweep's
  seed (the same seed, the same population), the base config's own values first; Ray's PBT takes no
  searcher. Each member is one Tune trial, with every parameter of the space in its config (one a
  `when` leaves inactive keeps the base value and is ignored).
- What mutates: the continuous parameters among `MUTABLE` (rates, weight decays, the averaging
  decay, the kernel term's weight and scale, the penalty's weight). Every other parameter —
  anything that changes a shape (model sizes, data, batch size, loss kind) — is fixed per member.
  A space with nothing to mutate is refused in one line.
- Exploit copies the donor's whole state: the donor's latest checkpoint (models, optimisers, weight
  averages, loop progress) is what the member resumes from (Tune checkpoints, which the Tune trial's
  run context writes only for these schedulers); the optimisers then take the member's new rates,
  and the member's random stream is re-seeded from its own trial and the step, so that it does not
  draw the donor's noise again.
- Lineage: `<exp>/lineage.jsonl`, one line per member at its start and per exploit (time, step,
  trial, donor, the member's parameters from then on), and a `restored` line when a resumed sweep
  continues a member as it was before an exploit that a killed driver had not yet saved;
  `infgan report` draws each mutable parameter of each member over the steps
  (`plots/pbt_lineage.png`).
- No perturbation at the budget's end: Ray's schedulers would exploit a bottom member on its final
  report too, replacing its finished result with a copy of the donor's (seen: a member's record
  then stopped at the step before). `EndsOwnRun` passes the final reports through.
- Settings (`pbt:` in a space): `perturbation_interval` (steps; a multiple of
  `budget.eval_every`, default 4 evaluations), `quantile` (0.25), `resample_probability` (0.25,
  PBT only), `synch` (false: each member is compared with the others' latest results when it
  reaches an interval; true: every member waits at each interval until all have reached it, then
  the bottom quantile copies the top — the same decisions whatever order members arrive in).
- Members that are TorchTrainers (`workers_per_trial` > 1): `infgan.tune.member`.
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path
from typing import Any

from infgan.atomic import atomic_write
from infgan.tune.space import DefineByRun, Param, SearchSpace

MUTABLE = (
    "train.generator_lr",
    "train.discriminator_lr",
    "train.generator_weight_decay",
    "train.discriminator_weight_decay",
    "train.ema_decay",
    "loss.sig_weight",
    "loss.gp_weight",
    "loss.sig_sigma",
    "loss.sig_scale",
)
LINEAGE = "lineage.jsonl"


def mutable(space: SearchSpace) -> list[Param]:
    """The parameters PBT may change during training: continuous ones of `MUTABLE`."""
    return [p for p in space.params if p.path in MUTABLE and p.type in ("uniform", "loguniform")]


def population(space: SearchSpace) -> list[dict[str, Any]]:
    """`samples` members: the space's first points, then random draws, every parameter present."""
    import optuna

    from infgan.config import flatten

    base = flatten(space.base)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=space.seed))
    draw = DefineByRun(space.params)
    members = []
    firsts = space.first_points()
    for i in range(space.samples):
        trial = study.ask()
        draw(trial)
        member = {p.path: base[p.path] for p in space.params}
        member.update(trial.params)
        if i < len(firsts):
            member.update(firsts[i])
        members.append(member)
    return members


class EndsOwnRun:
    """Mixin for Ray's PBT and PB2: a result at or past `budget` (the trial's last) is not perturbed."""

    budget: int = 0

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if self.budget and result.get("step", 0) >= self.budget:
            return "CONTINUE"  # TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)  # type: ignore[misc]


# The schedulers, built on first use (PB2 imports scikit-learn): module attributes all the same, so
# that Tune can pickle them with the sweep and unpickle them on resume.
_SCHEDULERS = {
    "PBTEndsOwnRun": ("ray.tune.schedulers", "PopulationBasedTraining"),
    "PB2EndsOwnRun": ("ray.tune.schedulers.pb2", "PB2"),
}


def __getattr__(name: str) -> type:
    if name not in _SCHEDULERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, base = _SCHEDULERS[name]
    cls = type(name, (EndsOwnRun, getattr(importlib.import_module(module), base)), {"__module__": __name__})
    cls.__qualname__ = name
    globals()[name] = cls
    return cls


def make_pbt(space: SearchSpace, bandit: bool) -> Any:
    """Ray's PopulationBasedTraining (or PB2) on the training step, mutating the member config."""
    from ray import tune

    params = mutable(space)
    common: dict[str, Any] = {
        "time_attr": "step",
        "metric": space.metric,
        "mode": space.mode,
        "perturbation_interval": space.pbt_interval,
        "quantile_fraction": space.pbt_quantile,
        "synch": space.pbt_synch,
        "log_config": False,  # lineage.jsonl, written by the members themselves, is the record
    }
    if bandit:
        scheduler = __getattr__("PB2EndsOwnRun")(
            hyperparam_bounds={"member": {p.path: [p.low, p.high] for p in params}}, **common
        )
    else:
        domains = {p.path: (tune.loguniform if p.type == "loguniform" else tune.uniform)(p.low, p.high) for p in params}
        scheduler = __getattr__("PBTEndsOwnRun")(
            hyperparam_mutations={"member": domains}, resample_probability=space.pbt_resample, **common
        )
    scheduler.budget = space.steps
    return scheduler


def record(exp_dir: Path, trial: str, step: int, donor: str | None, params: dict[str, Any]) -> None:
    """Append one lineage event (a member's start, or an exploit) to `<exp>/lineage.jsonl`."""
    line = json.dumps({"time": time.time(), "step": step, "trial": trial, "donor": donor, "params": params})
    with (Path(exp_dir) / LINEAGE).open("a") as fh:  # one short line per write: appends do not interleave
        fh.write(line + "\n")


def record_restore(exp_dir: Path, trial: str, step: int, params: dict[str, Any]) -> None:
    """A member continuing from its own checkpoint with other parameters than its lineage last gave
    it: after a driver was killed between an exploit and Tune's next save of its record, Tune
    restores the member as it was before that exploit. Recorded (donor none, `restored`), so the
    lineage says which parameters the member trains with from `step` on."""
    if current_params(exp_dir).get(trial) == params:
        return
    line = json.dumps(
        {"time": time.time(), "step": step, "trial": trial, "donor": None, "params": params, "restored": True}
    )
    with (Path(exp_dir) / LINEAGE).open("a") as fh:
        fh.write(line + "\n")


def lineage(exp_dir: Path) -> list[dict[str, Any]]:
    """Every lineage event, oldest first ([] for a sweep without PBT)."""
    path = Path(exp_dir) / LINEAGE
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue  # a torn last line from a killed member
    return sorted(events, key=lambda e: e["time"])


def current_params(exp_dir: Path) -> dict[str, dict[str, Any]]:
    """Each member's parameters as its last lineage event left them."""
    return {e["trial"]: e["params"] for e in lineage(exp_dir)}


def plot_lineage(exp_dir: Path, out: Path, paths: list[str]) -> Path | None:
    """Each mutable parameter of each member over the steps, exploits marked; None without lineage."""
    events = lineage(exp_dir)
    if not events or not paths:
        return None
    from infgan.plots import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(len(paths), 1, figsize=(8, 2.6 * len(paths)), squeeze=False, sharex=True)
    members = sorted({e["trial"] for e in events})
    ends: dict[str, int] = {}
    for m in members:
        records = Path(exp_dir) / "trials" / m / "metrics.jsonl"
        last = records.read_text().splitlines()[-1:] if records.exists() else []
        ends[m] = json.loads(last[0])["step"] if last else 0
    for ax, path in zip(axes[:, 0], paths):
        for m in members:
            mine = [e for e in events if e["trial"] == m]
            steps = [e["step"] for e in mine] + [max(ends[m], mine[-1]["step"])]
            values = [e["params"].get(path) for e in mine]
            values.append(values[-1])
            (line,) = ax.step(steps, values, where="post", label=m)
            jumps = [e for e in mine if e["donor"]]
            ax.scatter([e["step"] for e in jumps], [e["params"].get(path) for e in jumps], color=line.get_color())
        ax.set_ylabel(path.split(".")[-1])
        if "lr" in path or "sigma" in path:
            ax.set_yscale("log")
    axes[-1, 0].set_xlabel("training step (dots: the member copied a better one and explored)")
    axes[0, 0].legend(fontsize=7, ncol=4)
    fig.tight_layout()
    atomic_write(out, lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)
    return out
