"""One training loop for every task: stepping, clipping, schedules, evaluation, logging,
checkpoints and exact resume. It knows a task only through the small interface of
`rnnkit.train.trainer.Task`."""
