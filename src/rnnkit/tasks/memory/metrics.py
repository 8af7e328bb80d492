"""The long-memory problems' metrics (EQUATIONS.md, "Long-memory problems"). No torch.

adding: the mean squared error of the sums, and `error`, that MSE over the trivial answer's: always
answering 1 (the mean of a sum of two uniform [0, 1) values) has an expected MSE of 2/12 = 1/6.
copy: the accuracy over every answered symbol, and `error` = 1 − accuracy; guessing is 1/symbols.
"""

from __future__ import annotations

import numpy as np

BEST_METRIC, HIGHER_IS_BETTER = "error", False  # the validation metric that picks the best checkpoint
TRIVIAL_MSE = 1.0 / 6.0


def adding_metrics(predicted: np.ndarray, targets: np.ndarray) -> dict:
    mse = float(np.mean((np.asarray(predicted, dtype=np.float64) - targets) ** 2))
    return {"mse": mse, "error": mse / TRIVIAL_MSE, "trivial_mse": TRIVIAL_MSE, "examples": int(len(targets))}


def copy_metrics(predicted: np.ndarray, targets: np.ndarray, symbols: int) -> dict:
    accuracy = float(np.mean(predicted == targets))
    return {"accuracy": accuracy, "error": 1.0 - accuracy, "chance": 1.0 / symbols, "examples": int(targets.shape[1])}
