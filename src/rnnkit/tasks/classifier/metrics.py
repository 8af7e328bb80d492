"""The classifier's metrics (EQUATIONS.md, "Classification"). No torch."""

from __future__ import annotations

import numpy as np

BEST_METRIC, HIGHER_IS_BETTER = "accuracy", True  # the validation metric that picks the best checkpoint


def classification_metrics(true: np.ndarray, predicted: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, macro-F1 and per-class precision, recall and F1 (EQUATIONS.md), and the confusion
    matrix (rows: true labels, columns: predicted labels)."""
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(confusion, (true, predicted), 1)
    correct = np.diag(confusion)
    predicted_counts, true_counts = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(correct, predicted_counts, out=np.zeros(len(labels)), where=predicted_counts > 0)
    recall = np.divide(correct, true_counts, out=np.zeros(len(labels)), where=true_counts > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(len(labels)), where=precision + recall > 0)
    return {
        "accuracy": float(correct.sum() / max(len(true), 1)),
        "macro_f1": float(f1.mean()),
        "per_class": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
            for label, p, r, f, n in zip(labels, precision, recall, f1, true_counts)
        },
        "confusion": {"labels": labels, "matrix": confusion.tolist()},
        "examples": int(len(true)),
    }
