"""The one training loop: every task trains here, through the small `Training` interface.

Each step: set the lr from the schedule, take the task's next batch, compute its loss with the
carried state, backpropagate, clip, step, detach the carried state. Around the steps: progress
records, periodic validation and samples, checkpoints every `checkpoint_every` seconds, at every
new best validation metric and at the end, and the divergence guard. A non-finite loss or gradient
skips the step; `max_bad_steps` in a row roll everything back to the last checkpoint (never saved
with non-finite weights) and lower the lr by `rollback_lr_factor`. `patience` validations without a
new best stop the run. Ctrl-C and SIGTERM finish the step, save and stop; a second one stops at once,
except during a save, which always completes.

Nothing here reads the clock or a random generator in a way that changes what a step computes,
except the limits that are times (`max_time`, and a cosine schedule's progress under it): a run
limited by steps or epochs is bit-identical on CPU however often it is interrupted and resumed.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from typing import Protocol, TextIO

import torch
from torch import Tensor

from rnnkit.config import RunConfig, config_to_dict
from rnnkit.errors import UsageError
from rnnkit.metrics_log import MetricsLog, finite_or_none
from rnnkit.rundir import BEST, LATEST, RunDirectory, fingerprints
from rnnkit.train.checkpoint import (
    capture_random_state,
    flatten_optimizer_state,
    point,
    prune_checkpoints,
    read_checkpoint,
    restore_random_state,
    seed_generators,
    unflatten_optimizer_state,
    write_checkpoint,
)
from rnnkit.train.distributed import ALONE, Agreement, World, collective, parallel_model
from rnnkit.train.optimizers import build_optimizer, clip_gradients
from rnnkit.train.progress import ProgressLine, Silence
from rnnkit.train.schedules import LearningRateSchedule
from rnnkit.train.tensorboard_log import TensorBoardLog, summary_writer_class

CARRY_PREFIX = "carry."
RANK_PREFIX = "rank"  # rank N's random generators in a checkpoint of several ranks: "rankN.random.torch"
RAW_PREFIX = "raw."  # with NT-ASGD averaging, model.safetensors holds the average and these the raw weights


class Training(Protocol):
    """What the trainer drives: one task's model, batches and loss (a language model's, a classifier's,
    ...), built by the task's `build_training`."""

    model: torch.nn.Module
    best_metric: str  # the validation metric that chooses checkpoints/best, e.g. "nll" or "accuracy"
    higher_is_better: bool
    sample_every: int  # steps between texts for samples.txt; 0 if the task writes none
    count_unit: str  # what the counts of loss() count, e.g. "tokens" or "sentences"

    @property
    def epochs_done(self) -> float: ...  # passes over the training data so far, e.g. 2.25

    def start_record(self) -> dict: ...  # what the task adds to metrics.jsonl's start record ({} if nothing)

    def next_batch(self) -> object: ...

    def initial_carry(self) -> dict[str, Tensor]: ...  # state carried between batches ({} if none), (L, B, H)

    def shard(self, rank: int, size: int) -> None: ...  # read only this rank's part of every global batch

    def loss(self, batch: object, carry: dict[str, Tensor]) -> tuple[Tensor, int, dict[str, Tensor]]: ...

    def validate(self) -> dict: ...  # validation metrics: "loss" (for the plateau schedule) and best_metric

    def generate(self, seed: int) -> str | None: ...  # a text for samples.txt, or None

    def data_position(self) -> dict: ...

    def restore_data_position(self, position: dict) -> None: ...


class TrainingDiverged(Exception):
    """Rolled back `max_rollbacks` times and still non-finite."""


def all_finite(tensors) -> bool:
    return all(bool(torch.isfinite(tensor).all()) for tensor in tensors)


class Trainer:
    def __init__(
        self, training: Training, config: RunConfig, run: RunDirectory, progress_stream: TextIO | None = None
    ) -> None:
        self.training, self.config, self.run_directory, self.world = training, config, run, ALONE
        self.model = training.model
        self.parameters = list(self.model.parameters())
        self.device = self.parameters[0].device
        self.agreement = Agreement(ALONE, self.device)
        self.parallel = None  # the DistributedDataParallel wrapper the steps go through, with several ranks
        self.optimizer = build_optimizer(self.parameters, config.optim)
        self.schedule = LearningRateSchedule(config.optim)
        self.progress_stream = progress_stream
        self.progress = ProgressLine(progress_stream)
        self.metrics: MetricsLog | None = None
        self.board: TensorBoardLog | None = None  # with train.tensorboard, while run() runs
        if config.train.tensorboard:
            summary_writer_class()  # a missing package stops the run before it starts
        self.step, self.tokens, self.lr_scale, self.rollbacks = 0, 0, 1.0, 0
        self.carry = training.initial_carry()
        self.elapsed_before = 0.0  # seconds of training in earlier sessions of this run
        self.session_start = time.monotonic()
        self.bad_steps = 0
        self.stop_requested, self.saving, self.stop_reason = False, False, None
        self.stop_signal: int | None = None  # the signal that asked to stop (SIGINT or SIGTERM)
        self.stop_agreed, self.time_up = False, False  # with several ranks: what they agreed on last
        self.lr = config.optim.lr
        self.gradient_norm = math.nan  # the last step's, before clipping
        self.saved_at: tuple[int, int] | None = None  # (step, rollbacks) of the newest checkpoint
        self.best: dict | None = None  # {"value", "step"} of the best validation metric so far
        self.evaluations_since_best = 0
        self.last_evaluation: int | None = None
        self.files = fingerprints(run.path)  # the task's files (vocabulary, labels): fixed for the run's life
        self.lock = None  # the run's RunLock, held while this trainer may write the run; released by run()
        self.preset: str | None = None  # a new run's preset, recorded in its start record

    def join_world(self, world: World) -> None:
        """Train as one rank of several (torchrun): read this rank's share of each global batch, average
        the gradients with DistributedDataParallel, and leave the run directory to the leader."""
        if not world.distributed:
            return
        if not hasattr(self.training, "shard"):
            raise UsageError(f"the {self.config.task} task cannot train on several ranks")
        self.world, self.agreement = world, Agreement(world, self.device)
        self.training.shard(world.rank, world.size)
        self.carry = {name: self.rank_part(tensor) for name, tensor in self.carry.items()}
        self.parallel = parallel_model(self.training, self.device)
        self.progress = ProgressLine(self.progress_stream if world.leader else Silence(), world.size)

    # Time, progress and limits ---------------------------------------------------------------

    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.session_start

    def progress_fraction(self) -> float:
        """The largest fraction done of the limits that are set; 0 when none is."""
        limits = self.config.train
        fractions = [
            self.step / limits.max_steps if limits.max_steps else 0.0,
            self.training.epochs_done / limits.max_epochs if limits.max_epochs else 0.0,
            self.elapsed() / limits.max_time if limits.max_time else 0.0,
        ]
        return min(1.0, max(fractions))

    def limit_reached(self) -> str | None:
        limits = self.config.train
        if limits.max_steps and self.step >= limits.max_steps:
            return "max_steps"
        if limits.max_epochs and self.training.epochs_done >= limits.max_epochs:
            return "max_epochs"
        if limits.max_time and (self.time_up if self.world.distributed else self.elapsed() >= limits.max_time):
            return "max_time"
        return None

    def agree(self, checkpoint_due: bool) -> bool:
        """With several ranks, one small all-reduce of what each rank's signals and clock say, so that
        they stop, save and reach the time limit together; returns whether a checkpoint is due."""
        if not self.world.distributed:
            return checkpoint_due
        limit = self.config.train.max_time
        stop, due, self.time_up = self.agreement.any(
            [self.stop_requested, checkpoint_due, bool(limit) and self.elapsed() >= limit]
        )
        if stop and not self.stop_agreed:
            self.stop_agreed = True
            self.stop_signal = self.stop_signal or signal.SIGTERM  # the rank the signal reached knows which
        return due

    def stopping(self) -> bool:
        return self.stop_agreed if self.world.distributed else self.stop_requested

    # Checkpoints ------------------------------------------------------------------------------

    def save_checkpoint(self, best: bool = False) -> None:
        """Write a checkpoint (and name it `best` if asked); with non-finite weights, roll back instead
        (they are never saved). A signal during the save waits for it to complete."""
        if not all_finite(self.parameters):
            self.log({"event": "checkpoint_refused", "step": self.step, "reason": "non-finite weights"})
            self.roll_back()
            return
        if self.saved_at == (self.step, self.rollbacks) and not best:
            return  # no step since the newest checkpoint (e.g. Ctrl-C right after a periodic save)
        self.saving = True
        try:
            ranks = self.agreement.gather(self.rank_state())  # every rank's part, on the leader
            if self.world.leader:
                self._write_checkpoint(best, ranks)
        finally:
            self.saving = False
        self.last_checkpoint, self.saved_at = time.monotonic(), (self.step, self.rollbacks)
        self.log({"event": "checkpoint", "step": self.step, **({"best": True} if best else {})})

    def averaged(self):
        """A context in which the model holds the weights it is evaluated with (NT-ASGD's average)."""
        return getattr(self.optimizer, "averaged", contextlib.nullcontext)()

    def rank_state(self) -> tuple[dict, dict, dict]:
        """What each rank saves of its own: its random generators and its part of the carried state."""
        random_tensors, random_record = capture_random_state()
        carry = self.carry if not self.world.distributed else {name: t.cpu() for name, t in self.carry.items()}
        return random_tensors, random_record, carry

    def _write_checkpoint(self, best: bool, ranks: list[tuple[dict, dict, dict]]) -> None:
        """The leader's write. The carried state is saved whole (the ranks' parts joined along the batch),
        so that any number of ranks can take it up again; the generators are saved per rank."""
        optimizer_tensors, optimizer_record = flatten_optimizer_state(self.optimizer.state_dict())
        random_tensors, random_record, _ = ranks[0]
        for rank, (tensors, record, _) in enumerate(ranks[1:], 1):
            random_tensors |= {f"{RANK_PREFIX}{rank}.{name}": tensor for name, tensor in tensors.items()}
            random_record = {**random_record, f"{RANK_PREFIX}{rank}": record}
        carry = {name: torch.cat([part[2][name] for part in ranks], dim=1) for name in ranks[0][2]}
        carry_tensors = {CARRY_PREFIX + name: tensor for name, tensor in carry.items()}
        raw_tensors = {}
        if getattr(self.optimizer, "averaging", False):  # eval and sample read the average; resume the raw weights
            raw_tensors = {
                RAW_PREFIX + name: tensor.detach().clone() for name, tensor in self.model.state_dict().items()
            }
        with self.averaged():
            model_tensors = {name: tensor.detach().clone() for name, tensor in self.model.state_dict().items()}
        state = {
            "step": self.step,
            "tokens": self.tokens,
            "elapsed_seconds": self.elapsed(),
            "lr_scale": self.lr_scale,
            "rollbacks": self.rollbacks,
            "data_position": self.training.data_position(),
            "schedule": self.schedule.state_dict(),
            "files": self.files,
            "best": self.best,
            "evaluations_since_best": self.evaluations_since_best,
            "optimizer": optimizer_record,
            "random": random_record,
            "config": config_to_dict(self.config),
            "world_size": self.world.size,
        }
        checkpoints = self.run_directory.checkpoints_path
        name = write_checkpoint(
            checkpoints,
            self.step,
            model_tensors,
            {**optimizer_tensors, **random_tensors, **carry_tensors, **raw_tensors},
            state,
        )
        point(checkpoints, LATEST, name)
        if best:
            point(checkpoints, BEST, name)
        self.prune(name)

    def prune(self, latest: str) -> None:
        """Keep latest, best, the `keep_checkpoints` newest others and every `keep_every`-th step."""
        checkpoints = self.run_directory.checkpoints_path
        best = self.run_directory.pointed_checkpoint(BEST)
        keep = {latest} | ({best.name} if best else set())
        others = sorted(
            (entry.name for entry in checkpoints.glob("step-*") if entry.name not in keep),
            key=lambda name: [int(part) for part in name[len("step-") :].split(".")],
        )
        if self.config.train.keep_checkpoints:
            keep |= set(others[-self.config.train.keep_checkpoints :])
        every = self.config.train.keep_every
        if every:
            keep |= {name for name in others if int(name[len("step-") :].split(".")[0]) % every == 0}
        prune_checkpoints(checkpoints, keep)

    def load_checkpoint(self) -> dict:
        """Restore everything from the run's latest checkpoint; returns its trainer state."""
        directory = self.run_directory.latest_checkpoint()
        expected = {name: tuple(tensor.shape) for name, tensor in self.model.state_dict().items()}
        model_tensors, trainer_tensors, state = read_checkpoint(directory, expected)
        try:
            self.model.load_state_dict(model_tensors, strict=True)
            raw = {
                name[len(RAW_PREFIX) :]: tensor
                for name, tensor in trainer_tensors.items()
                if name.startswith(RAW_PREFIX)
            }
            if raw:
                self.model.load_state_dict(raw, strict=True)
            self.optimizer.load_state_dict(unflatten_optimizer_state(trainer_tensors, state["optimizer"]))
            self.schedule.load_state_dict(state["schedule"])
            self.training.restore_data_position(state["data_position"])
            self.restore_rank_random_state(trainer_tensors, state)
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as error:
            raise UsageError(f"{directory}: the checkpoint does not fit this run ({error})") from None
        self.step, self.tokens = state["step"], state["tokens"]
        self.lr_scale, self.rollbacks = float(state["lr_scale"]), state["rollbacks"]
        self.best = state.get("best")
        self.evaluations_since_best = state.get("evaluations_since_best", 0)
        self.saved_at = (self.step, self.rollbacks)
        self.carry = {
            name[len(CARRY_PREFIX) :]: self.rank_part(tensor).to(self.device)
            for name, tensor in trainer_tensors.items()
            if name.startswith(CARRY_PREFIX)
        }
        return state

    def rank_part(self, carried: Tensor) -> Tensor:
        """This rank's streams of a carried state saved whole, (L, B, H) -> (L, B / ranks, H)."""
        if not self.world.distributed:
            return carried
        return carried.chunk(self.world.size, dim=1)[self.world.rank].contiguous()

    def restore_rank_random_state(self, tensors: dict, state: dict) -> None:
        """Each rank's own generators, as saved; a rank the checkpoint has none for (it was saved by
        fewer ranks) starts its generators from the seed, the step and its rank."""
        rank, prefix = self.world.rank, f"{RANK_PREFIX}{self.world.rank}."
        if rank == 0:
            restore_random_state(tensors, state["random"])
        elif f"{RANK_PREFIX}{rank}" in state["random"]:
            own = {name[len(prefix) :]: tensor for name, tensor in tensors.items() if name.startswith(prefix)}
            restore_random_state(own, state["random"][f"{RANK_PREFIX}{rank}"])
        else:
            seed_generators(self.config.train.seed, state["step"], rank)

    def resume(self) -> None:
        state = self.load_checkpoint()
        saved_by = state.get("world_size", 1)
        if saved_by != self.world.size and self.step > 0:  # a new run's first checkpoint has read nothing
            self.progress.message(
                f"rnnkit train: step {self.step} was saved by {saved_by} rank(s) and goes on with {self.world.size}: "
                "the data position was re-sharded (the global batch and its order are unchanged)"
            )
        self.elapsed_before = float(state["elapsed_seconds"])
        self.session_start = time.monotonic()

    def roll_back(self) -> None:
        """Back to the last checkpoint with a lower lr (the time spent is not given back)."""
        if self.rollbacks >= self.config.train.max_rollbacks:
            raise TrainingDiverged(
                f"training diverged: still non-finite after {self.rollbacks} rollbacks (lr scale {self.lr_scale:g})"
            )
        elapsed = self.elapsed()
        lr_scale, rollbacks = self.lr_scale * self.config.train.rollback_lr_factor, self.rollbacks + 1
        self.load_checkpoint()
        self.elapsed_before, self.session_start = elapsed, time.monotonic()
        self.lr_scale, self.rollbacks, self.bad_steps = lr_scale, rollbacks, 0
        self.log({"event": "rollback", "to_step": self.step, "lr_scale": lr_scale, "rollbacks": rollbacks})
        self.progress.message(f"rolled back to step {self.step}; lr scaled by {lr_scale:g}")

    # Steps ---------------------------------------------------------------------------------------

    def train_step(self) -> float:
        """One optimisation step (or a skipped one); returns its loss (non-finite if skipped)."""
        self.model.train()
        batch = self.training.next_batch()
        self.lr = self.config.optim.lr * self.lr_scale * self.schedule.factor(self.step, self.progress_fraction())
        self.lr *= getattr(batch, "lr_factor", 1.0)  # a variable-length BPTT window scales its step
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        if self.parallel is None:
            loss, count, carry = self.training.loss(batch, self.carry)
        else:
            loss, count, carry = collective(self.parallel, batch, self.carry)
        self.optimizer.zero_grad(set_to_none=True)
        loss_value, gradient_norm = float(loss.detach()), math.nan
        if self.parallel is not None:
            # every rank takes part in every backward (its all-reduce), and all see the same mean loss,
            # gradient and count, so they skip or step together
            total, count = self.agreement.sums([loss_value, count])
            loss_value, count = total / self.world.size, int(count)
            collective(loss.backward)
            gradient_norm = clip_gradients(self.parameters, self.config.optim)
        elif math.isfinite(loss_value):
            loss.backward()
            gradient_norm = clip_gradients(self.parameters, self.config.optim)
        self.gradient_norm = gradient_norm
        self.step, self.tokens = self.step + 1, self.tokens + count
        if math.isfinite(loss_value) and math.isfinite(gradient_norm):
            self.optimizer.step()
            self.carry = {name: tensor.detach() for name, tensor in carry.items()}
            self.bad_steps = 0
            return loss_value
        self.skip_step(loss_value, gradient_norm, carry)
        return math.nan

    def skip_step(self, loss_value: float, gradient_norm: float, carry: dict[str, Tensor]) -> None:
        self.bad_steps += 1
        # A finite state is still the right context for the next window; a non-finite one is not.
        self.carry = (
            {name: tensor.detach() for name, tensor in carry.items()}
            if all_finite(carry.values())
            else self.training.initial_carry()
        )
        reason = "non-finite loss" if not math.isfinite(loss_value) else "non-finite gradient"
        self.log(
            {
                "event": "skip",
                "step": self.step,
                "reason": reason,
                "loss": finite_or_none(loss_value),
                "consecutive": self.bad_steps,
            }
        )
        self.progress.message(f"step {self.step}: skipped ({reason})")
        if self.bad_steps >= self.config.train.max_bad_steps:
            self.roll_back()

    # Reports ------------------------------------------------------------------------------------

    def log(self, record: dict) -> None:
        if self.metrics is not None:
            self.metrics.write({**record, "elapsed": round(self.elapsed(), 3)})
        if self.board is not None:
            self.board.write(record)

    def evaluate(self) -> None:
        with self.averaged():
            metrics = self.training.validate()
        self.last_evaluation = self.step
        self.log({"event": "eval", "step": self.step, **metrics})
        shown = ", ".join(
            f"{name} {value:.4f}" if isinstance(value, float) else f"{name} {value}" for name, value in metrics.items()
        )
        self.progress.message(f"step {self.step}: validation {shown}")
        if self.schedule.observe_validation(metrics["loss"]):
            self.log({"event": "lr_drop", "step": self.step, "plateau_factor": self.schedule.plateau_factor})
        if hasattr(self.optimizer, "observe_validation") and self.optimizer.observe_validation(metrics["loss"]):
            self.log({"event": "averaging", "step": self.step})
            self.progress.message(f"step {self.step}: NT-ASGD switches to averaging")
        self.observe_best(float(metrics[self.training.best_metric]))

    def observe_best(self, value: float) -> None:
        """A new best validation metric is saved as checkpoints/best; `patience` evaluations
        without one stop the run."""
        improved = math.isfinite(value) and (
            self.best is None
            or (value > self.best["value"] if self.training.higher_is_better else value < self.best["value"])
        )
        if improved:
            self.best, self.evaluations_since_best = {"value": value, "step": self.step}, 0
            self.save_checkpoint(best=True)
            return
        self.evaluations_since_best += 1
        if self.config.train.patience and self.evaluations_since_best >= self.config.train.patience:
            self.stop_reason = "patience"

    def write_sample(self) -> None:
        if not self.world.leader:
            return
        text = self.training.generate(seed=self.config.train.seed + self.step)
        if text is not None:
            try:
                with open(self.run_directory.samples_path, "a", encoding="utf-8") as file:
                    file.write(f"=== step {self.step} ===\n{text}\n")
            except OSError as error:
                raise UsageError(f"cannot write {self.run_directory.samples_path}: {error.strerror}") from None
            if self.board is not None:
                self.board.sample(self.step, text)

    # The loop ----------------------------------------------------------------------------------

    def request_stop(self, signum, frame) -> None:
        """Ctrl-C or SIGTERM: finish the current step, save, stop. A second one stops at once, except
        during a save: that completes first (and a checkpoint is renamed into place whole anyway)."""
        if self.stop_requested and not self.saving:
            raise KeyboardInterrupt
        self.stop_requested, self.stop_signal = True, signum

    def run(self, resumed: bool = False) -> str:
        """Train until a limit, patience or a signal; returns why it stopped."""
        self.metrics = MetricsLog(self.run_directory.metrics_path) if self.world.leader else None
        if self.config.train.tensorboard and self.world.leader:
            self.board = TensorBoardLog(
                self.run_directory.path, self.step, config_to_dict(self.config), self.training.best_metric
            )
        handlers = {signum: signal.signal(signum, self.request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.session_start = time.monotonic()  # setting up is not training time
            self.log(
                {
                    "event": "resume" if resumed else "start",
                    "step": self.step,
                    "parameters": sum(parameter.numel() for parameter in self.parameters),
                    **({"preset": self.preset} if self.preset else {}),
                    **self.training.start_record(),
                }
            )
            reason = self.loop()
            self.log({"event": "end", "step": self.step, "reason": reason, self.training.count_unit: self.tokens})
            return reason
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            self.progress.close()
            if self.metrics is not None:
                self.metrics.close()
            self.metrics = None
            if self.board is not None:
                self.board.close()
                self.board = None
            if self.lock is not None:
                self.lock.release()
                self.lock = None

    def loop(self) -> str:
        limits = self.config.train
        self.last_checkpoint = time.monotonic()
        interval_losses, interval_norms, interval_start, interval_tokens = [], [], time.monotonic(), self.tokens
        session_progress, session_clock = self.progress_fraction(), time.monotonic()
        self.agree(False)
        while not (reason := self.limit_reached() or self.stop_reason or ("interrupted" if self.stopping() else None)):
            loss = self.train_step()
            if math.isfinite(loss):
                interval_losses.append(loss)
                interval_norms.append(self.gradient_norm)
            logging_step = self.step % limits.log_every == 0
            now, progress = time.monotonic(), self.progress_fraction()
            rate = max(0, self.tokens - interval_tokens) / max(now - interval_start, 1e-9)  # a rollback rewinds tokens
            eta = (
                (1 - progress) * (now - session_clock) / (progress - session_progress)
                if progress > session_progress
                else None
            )
            mean_loss = sum(interval_losses) / len(interval_losses) if interval_losses else math.nan
            self.progress.update(
                self.step, mean_loss, self.lr, rate, self.training.count_unit, progress, eta, logging_step
            )
            if logging_step:
                self.log(
                    {
                        "event": "train",
                        "step": self.step,
                        "epoch": round(self.training.epochs_done, 4),
                        "loss": finite_or_none(mean_loss),
                        "lr": self.lr,
                        "gradient_norm": finite_or_none(
                            sum(interval_norms) / len(interval_norms) if interval_norms else math.nan
                        ),
                        f"{self.training.count_unit}_per_second": round(rate, 1),
                    }
                )
                interval_losses, interval_norms, interval_start, interval_tokens = [], [], now, self.tokens
            if limits.eval_every and self.step % limits.eval_every == 0:
                self.evaluate()
            if self.training.sample_every and self.step % self.training.sample_every == 0:
                self.write_sample()
            kept_step = limits.keep_every and self.step % limits.keep_every == 0
            counted = limits.checkpoint_steps and self.step % limits.checkpoint_steps == 0
            due = kept_step or counted or time.monotonic() - self.last_checkpoint >= limits.checkpoint_every
            if self.agree(bool(due)):
                self.save_checkpoint()
        if reason not in ("interrupted", "patience") and limits.eval_every and self.last_evaluation != self.step:
            self.evaluate()
        self.save_checkpoint()
        return reason
