"""One training loop for every task: stepping, clipping, schedules, validation, logging,
checkpoints and exact resume. It knows a task only through the small interface of
`rnnkit.train.trainer.Training`. The run lifecycle that starts and resumes it is rnnkit.runs."""
