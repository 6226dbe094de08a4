"""Ray: the cluster connection, the Ray Train driver for multi-worker runs, and (later) Tune sweeps.

Nothing here is imported by `import infgan`; Ray is imported lazily by these modules only.
"""
