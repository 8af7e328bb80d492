"""TensorBoard event files for a run, with `train.tensorboard = true`: what metrics.jsonl records,
written again through `torch.utils.tensorboard` into the run's `tensorboard/` folder, for people who
watch their runs there (`tensorboard --logdir runs`).

- `train/loss`, `train/lr`, `train/gradient_norm` and `train/<unit>_per_second` at every train record;
- `validation/<metric>` for each number of an eval record (the task's metrics: nll, accuracy, ...);
- `samples` as text, at each sample the run writes to samples.txt;
- the run's settings as TensorBoard hyperparameters, with the validation metric that chooses `best`.

metrics.jsonl stays the record that rnnkit itself reads; these files are a copy for TensorBoard only.
A resumed run purges what a killed session wrote past its checkpoint, so curves do not fold back.
"""

from __future__ import annotations

from pathlib import Path

from rnnkit.errors import UsageError
from rnnkit.rundir import TENSORBOARD

INSTALL = "pip install 'rnnkit[tensorboard]'"
NOT_CURVES = ("event", "step", "elapsed", "epoch")  # fields of a record that are not a curve of their own


def summary_writer_class():
    """torch's SummaryWriter, or one line naming the package that is missing."""
    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it, and says so less plainly)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UsageError(f"train.tensorboard needs the tensorboard package: {INSTALL}") from None
    return SummaryWriter


def flat_settings(config: dict, prefix: str = "") -> dict:
    """A nested config as TensorBoard hyperparameters: dotted names, and values it can show (numbers,
    text, booleans; a list as its text)."""
    flat = {}
    for name, value in config.items():
        if isinstance(value, dict):
            flat |= flat_settings(value, f"{prefix}{name}.")
        elif isinstance(value, (bool, int, float, str)):
            flat[prefix + name] = value
        else:
            flat[prefix + name] = str(value)
    return flat


class TensorBoardLog:
    """Receives the records metrics.jsonl receives (and the samples), and writes them as TensorBoard
    events. `step` is where training starts: 0 for a new run, the checkpoint's step on resume."""

    def __init__(self, run_path: Path, step: int, settings: dict, best_metric: str) -> None:
        writer_class = summary_writer_class()
        self.path = Path(run_path) / TENSORBOARD
        try:
            # records up to the checkpoint's step stay; a killed session's later ones are written again
            self.writer = writer_class(str(self.path), purge_step=step + 1 if step else None, flush_secs=10)
        except OSError as error:
            raise UsageError(f"cannot write {self.path}: {error.strerror}") from None
        if step == 0:
            from torch.utils.tensorboard.summary import hparams

            for summary in hparams(flat_settings(settings), {f"validation/{best_metric}": 0.0}):
                self.writer.file_writer.add_summary(summary)

    def write(self, record: dict) -> None:
        section = {"train": "train", "eval": "validation"}.get(record["event"])
        if section is None:
            return
        for name, value in record.items():
            if name not in NOT_CURVES and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"{section}/{name}", value, record["step"])
        if section == "validation":
            self.writer.flush()

    def sample(self, step: int, text: str) -> None:
        # TensorBoard renders text as Markdown: indenting every line by four spaces shows it as written
        self.writer.add_text("samples", "\n".join("    " + line for line in text.split("\n")), step)

    def close(self) -> None:
        self.writer.close()
