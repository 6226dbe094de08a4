"""Ray Tune sweeps, cut by where the code runs:

- read everywhere: `spec` (what a sweep can be set to, as data: searchers, schedulers, the sweep
  spec's sections) and `space` (a space file checked into a `SearchSpace`);
- the driver: `run` (the Tuner, resume, confirmation of the winners on fresh seeds), `searchers`
  (Optuna, W&B's engine, a population), `schedulers` (ASHA, W&B's hyperband, PBT, PB2), `wandb_engine`
  and `wandb_file` (W&B's sweep engine and sweep file) and `callbacks` (what a sweep prints, its W&B runs);
- a trial's process: `trial` (its training, its run context, PBT members, the one report to Tune);
- the files: `results` (what a sweep found: trials, confirmed medians, lineage) and `report` (tables,
  results.csv, best_config.yaml, plots), readable without Ray.

A trial trains through `infgan.train` (see its docstring, path 3). Nothing here is imported by
`import infgan`; Ray is imported by the driver's and the trial's modules only.
"""
