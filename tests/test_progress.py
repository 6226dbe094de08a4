"""What a sweep prints: one line per ended trial, saying how it ended, against the metric's floor."""

from __future__ import annotations

import io
from types import SimpleNamespace

from infgan.tune.callbacks import SweepProgress
from infgan.tune.space import parse_space

SPACE = parse_space(
    {
        "samples": 4,
        "budget": {"steps": 40, "eval_every": 10},
        "parameters": {"train.generator_lr": {"type": "loguniform", "low": 1e-3, "high": 1e-1}},
    },
    "space.yaml",
)


def trial(trial_id, status, lr, **result):
    return SimpleNamespace(
        trial_id=trial_id,
        status=status,
        config={"train.generator_lr": lr},
        last_result=result,
        error_file=f"/x/{trial_id}/error.txt",
        local_path=f"/x/{trial_id}",
    )


def test_one_line_per_ended_trial_with_how_it_ended_and_the_best_so_far():
    out = io.StringIO()
    progress = SweepProgress(SPACE, "starting sweep s", stream=out)
    progress.setup()
    done = trial("a", "TERMINATED", 0.01, step=40, **{"val/score": 0.4, "val/score_floor": 0.15})
    early = trial("b", "TERMINATED", 0.02, step=10, **{"val/score": 0.9, "val/score_floor": 0.15})
    diverged = trial("c", "TERMINATED", 0.5, step=10, diverged=True, **{"val/score": 1e308})
    failed = trial("d", "ERROR", 0.03, step=20)
    for t in (done, early, diverged):
        progress.on_trial_complete(0, [], t)
    progress.on_trial_error(0, [], failed)
    progress.on_experiment_end([done, early, diverged, failed])
    lines = out.getvalue().splitlines()
    assert lines[0] == "starting sweep s"
    assert lines[1] == "a  finished at step 40/40  val/score 0.4 (floor 0.15)  train.generator_lr=0.01"
    assert lines[2].startswith("b  stopped early at step 10/40  val/score 0.9")
    assert lines[3] == "c  diverged at step 10/40  train.generator_lr=0.5"  # no meaningless value
    assert lines[4] == "d  failed (Tune's error file: /x/d/error.txt)  train.generator_lr=0.03"
    assert len(lines) == 5
    assert progress.best == 0.4  # the best value so far, in the space's mode


def test_a_trial_shows_only_the_parameters_that_applied_to_it():
    """The default space searches the critic's rate under gan and the kernel's width under fdm: an fdm
    trial's line shows no critic rate, a gan trial's no kernel width, though each carries both."""
    from infgan.tune.report import param_cells
    from infgan.tune.run import space_record
    from infgan.tune.space import load_space

    space = load_space(None)
    both = {"loss.sig_sigma": 0.3, "loss.fdm_pairs": 64, "train.critic_lr": 0.08, "loss.sig_weight": 1.0}
    fdm, gan = {"loss.kind": "fdm", **both}, {"loss.kind": "gan", **both}
    assert set(space.applied(fdm)) == {"loss.kind", "loss.sig_sigma", "loss.fdm_pairs"}
    assert set(space.applied(gan)) == {"loss.kind", "train.critic_lr", "loss.sig_weight"}
    out = io.StringIO()
    progress = SweepProgress(space, "starting", stream=out)
    progress.setup()
    progress.on_trial_complete(
        0, [], SimpleNamespace(trial_id="f", status="TERMINATED", config=fdm, last_result={"step": 1500})
    )
    line = out.getvalue().splitlines()[1]
    assert "loss.sig_sigma=0.3" in line and "critic_lr" not in line and "sig_weight" not in line
    record = space_record(space)
    cells = dict(zip(record["parameters"], param_cells(record, gan)))
    assert cells["train.critic_lr"] == "0.08" and cells["loss.sig_sigma"] == "-" and cells["loss.fdm_pairs"] == "-"
