"""The handlers of the commands that read finished runs and sweeps: `sample`, `score`, `export`,
`evaluate` and `compare` (`infgan.cli` parses the command line and calls them). A run is read
through `infgan.train.trained.TrainedRun`.
"""
