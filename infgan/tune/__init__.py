"""Ray Tune sweeps: search-space files (`space`), Optuna TPE and ASHA as infgan uses them
(`search`), W&B's sweep engine as a searcher and scheduler (`wandb_engine`), the Tuner and its
trial function (`run`), W&B runs of trials (`wandb_trials`) and the reports (`report`).
A trial trains through `infgan.train` (see its docstring, path 3).

Nothing here is imported by `import infgan`; Ray is imported lazily by these modules only.
"""
