"""Training: the state, the one training step, the loop, the contexts it runs in, and the Ray Train driver.

One run executes in one of four ways; all of them call the same `fit` (`loop.py`) and so the
same `train_step` (`step.py`), and all differences live in the run context (`context.py`):

1. `infgan train`: `commands/train.py: run` resolves the config and calls `fit` in this process with a
   `RunContext` (rank 0 of 1; checkpoints and metrics as files in the run directory).
2. `infgan train --workers N`: `commands/train.py: _train_distributed` starts or joins Ray
   (`infgan.cluster.ray_session`) and calls `distributed.fit_distributed`, whose TorchTrainer
   runs `distributed.train_worker` on N Ray Train workers; each calls `fit` with a
   `RayTrainContext` (DDP models, checkpoints and results through `ray.train.report`).
3. A Ray Tune trial of `infgan tune`: `infgan.tune.trial.tune_trial` builds the trial's config and
   calls `fit` with a `TuneTrialContext` (results to Tune), or, when the space asks for several
   workers per trial, path 2's `fit_distributed`, whose reports the trial hands on to Tune.
4. A W&B sweep agent's run: the agent launches `infgan train` (path 1, or path 2 with
   `--workers`); `commands/train.py: _train_config` takes the run's config from the agent's W&B run.

Modules: `state` (models, optimisers, averages, RNG, loop progress), `step` (one training step,
no I/O), `losses` (one module per loss kind, a registry), `loop` (`fit`), `sinks` (where each
evaluation goes: metrics.jsonl, W&B, `board` for TensorBoard, `animation` for samples.gif),
`guard` (divergence), `context` (where it runs), `distributed` (the Ray Train driver),
`checkpoint` and `run_dir` (files), `trained` (a run read back by the commands).
"""
