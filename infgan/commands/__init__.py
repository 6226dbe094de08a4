"""The commands of `infgan`, one module each: `arguments(parser)` adds its flags, `run(args)` runs
it and returns the exit code; `infgan.cli.COMMANDS` lists them (one line each). What several
commands share on the command line is in `args`. A command that reads a finished run does so
through `infgan.train.trained.TrainedRun`.
"""
