"""Ray Tune sweeps: search-space files (`space`), Optuna TPE and ASHA as infgan uses them
(`search`), the schedulers' registry (`schedulers`, with PBT in `pbt`), confirmation of the winners
on fresh seeds (`confirm`), the Tuner and its trial function (`run`) and the reports (`report`).
W&B's sweep engine as a searcher and scheduler and W&B runs of trials live in `infgan.wandb`.
A trial trains through `infgan.train` (see its docstring, path 3).

Nothing here is imported by `import infgan`; Ray is imported lazily by these modules only.
"""
