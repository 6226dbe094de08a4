"""Ray: the cluster connection and its health check, the Ray Train driver for multi-worker runs, and
Tune sweeps.

Nothing here is imported by `import infgan`; Ray is imported lazily by these modules only.
"""
