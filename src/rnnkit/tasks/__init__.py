"""One module per task. A task gives the trainer (rnnkit.train) a model, batches, a loss, the
state carried between batches, and an evaluation; see `rnnkit.train.trainer.Task`."""
