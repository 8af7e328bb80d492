"""The tagger's metrics (EQUATIONS.md, "Tagging"). No torch."""

from __future__ import annotations

from collections import Counter

import numpy as np

BEST_METRIC, HIGHER_IS_BETTER = "accuracy", True  # the validation metric that picks the best checkpoint

SHOWN_CONFUSIONS = 10


def tagging_metrics(
    gold: list[np.ndarray],
    predicted: list[np.ndarray],
    unseen: list[np.ndarray],
    tags: list[str],
    gold_names: list[list[str]],
) -> dict:
    """Token and sentence accuracy, accuracy on words the vocabulary does not hold, per-tag precision,
    recall and F1, and the most frequent confusions. A gold tag outside the tag set counts as an error."""
    flat_gold, flat_predicted = np.concatenate(gold), np.concatenate(predicted)
    flat_unseen = np.concatenate(unseen)
    names = [name for sentence in gold_names for name in sentence]
    correct = flat_gold == flat_predicted
    per_tag = {}
    for tag in sorted(set(tags) | set(names)):
        true_here = np.array([name == tag for name in names])
        predicted_here = np.array([tags[p] == tag for p in flat_predicted])
        hits = int((true_here & predicted_here).sum())
        precision = hits / predicted_here.sum() if predicted_here.sum() else 0.0
        recall = hits / true_here.sum() if true_here.sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_tag[tag] = {"precision": precision, "recall": recall, "f1": f1, "support": int(true_here.sum())}
    confusions = Counter((name, tags[p]) for name, p, right in zip(names, flat_predicted, correct) if not right)
    return {
        "accuracy": float(correct.mean()),
        "sentence_accuracy": float(np.mean([np.array_equal(g, p) for g, p in zip(gold, predicted)])),
        "unseen_accuracy": float(correct[flat_unseen].mean()) if flat_unseen.any() else None,
        "unseen_tokens": int(flat_unseen.sum()),
        "tokens": int(len(flat_gold)),
        "sentences": len(gold),
        "per_tag": per_tag,
        "confusions": [
            {"gold": g, "predicted": p, "count": n} for (g, p), n in confusions.most_common(SHOWN_CONFUSIONS)
        ],
    }
