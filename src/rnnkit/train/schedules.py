"""Learning-rate schedules: lr = base lr × warmup × shape, where the shape is constant, a cosine
over the run's progress, or a factor that drops when validation stops improving.

Progress is the fraction of the run done, from 0 to 1: the largest of the fractions of whichever
limits are set (steps, epochs, seconds), so a run stopped by its time limit still ends its cosine.
"""

from __future__ import annotations

import math

from rnnkit.config import OptimConfig


class LearningRateSchedule:
    def __init__(self, optim: OptimConfig) -> None:
        self.optim = optim
        self.plateau_factor = 1.0  # plateau: the product of the drops so far
        self.best_loss = math.inf
        self.evaluations_without_improvement = 0

    def factor(self, step: int, progress: float) -> float:
        """The multiplier of the base lr at this step (0-based) and progress (0 to 1)."""
        warmup = min(1.0, (step + 1) / self.optim.warmup_steps) if self.optim.warmup_steps else 1.0
        if self.optim.schedule == "cosine":
            floor = self.optim.min_lr_fraction
            shape = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        else:
            shape = self.plateau_factor
        return warmup * shape

    def observe_validation(self, loss: float) -> bool:
        """Record a validation loss; True when the plateau schedule lowers the lr."""
        if self.optim.schedule != "plateau":
            return False
        if loss < self.best_loss:
            self.best_loss, self.evaluations_without_improvement = loss, 0
            return False
        self.evaluations_without_improvement += 1
        if self.evaluations_without_improvement <= self.optim.plateau_patience:
            return False
        self.plateau_factor *= self.optim.plateau_factor
        self.evaluations_without_improvement = 0
        return True

    def state_dict(self) -> dict:
        return {
            "plateau_factor": self.plateau_factor,
            "best_loss": self.best_loss if math.isfinite(self.best_loss) else None,
            "evaluations_without_improvement": self.evaluations_without_improvement,
        }

    def load_state_dict(self, state: dict) -> None:
        self.plateau_factor = float(state["plateau_factor"])
        self.best_loss = math.inf if state["best_loss"] is None else float(state["best_loss"])
        self.evaluations_without_improvement = int(state["evaluations_without_improvement"])
