"""A run's label set (a classifier's labels.json, a tagger's tags.json): the label names in id order."""

from __future__ import annotations

import json
from pathlib import Path

from rnnkit.atomic import read_json, write_text_atomically
from rnnkit.errors import UsageError

LABELS_FORMAT = "rnnkit-labels"


def save_labels(labels: list[str], path: Path) -> None:
    write_text_atomically(path, json.dumps({"format": LABELS_FORMAT, "version": 1, "labels": labels}, indent=1) + "\n")


def load_labels(path: Path) -> list[str]:
    record = read_json(path, "label set")
    labels = record.get("labels") if isinstance(record, dict) and record.get("format") == LABELS_FORMAT else None
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) and label for label in labels):
        raise UsageError(f"{path}: not an rnnkit label set (a non-empty list of label names)")
    if len(set(labels)) != len(labels):
        raise UsageError(f"{path}: the label set contains duplicates")
    return labels
