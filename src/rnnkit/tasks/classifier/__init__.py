"""The sentence-classification task (many-to-one): its definition (TASK) and its commands, `eval` and
`predict`.

A sentence is a sequence of whitespace-separated words; a recurrent layer reads it and the sentence
vector (its last state, or the max or mean over time of the top layer's outputs) goes to a linear
layer and a softmax over the labels (EQUATIONS.md, "Classification"). Below this face: `config.py`
([model] and [data]), `data.py` (the labelled files and the run's vocabulary.json and labels.json) and
`metrics.py`, with no torch; the engines `torch.py` (the network, training, evaluation) and `numpy.py`
(`predict --engine numpy`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

import numpy as np

from rnnkit.data.labelled import read_examples
from rnnkit.data.text import stdin_lines
from rnnkit.data.vocabulary import Vocabulary
from rnnkit.errors import UsageError
from rnnkit.tasks import EVAL_DATA_OPTION, EXPORT_OPTIONS, TEXTS_OPTION, eval_command, export_command
from rnnkit.tasks.classifier import data
from rnnkit.tasks.classifier.config import ClassifierConfig
from rnnkit.tasks.classifier.data import encode, load_run_files
from rnnkit.tasks.classifier.metrics import classification_metrics
from rnnkit.tasks.engines import ENGINE_OPTION, model_function

SHOWN_MISTAKES = 10  # misclassified examples listed by `rnnkit eval`
PREDICT_BATCH = 256  # lines of standard input classified together


def probability_function(run, checkpoint: Path, vocabulary: Vocabulary, labels: list[str], engine: str):
    """The checkpoint's model as a function: list of token-id arrays -> probabilities (N, K)."""
    return model_function(__name__, engine, run, checkpoint, vocabulary, labels)


def evaluate_run(run, checkpoint: Path, data_path: str | None) -> dict:
    """`rnnkit eval`: the metrics on a labelled file (default: the run's validation data), with the
    first misclassified examples."""
    from rnnkit.tasks.classifier.torch import predict_labels

    config = run.config
    vocabulary, labels = load_run_files(run.path)
    if data_path:
        examples = read_examples(data_path, config.data.format, False, config.data.lowercase)[0]
        encoded = encode(examples, vocabulary, labels, data_path)
    elif config.data.validation:
        examples = read_examples(config.data.validation, config.data.format, False, config.data.lowercase)[0]
        encoded = encode(examples, vocabulary, labels, config.data.validation)
    else:  # the held-out end of the training file
        encoded = data.prepare(config, run.path)[1].validation
    predicted = predict_labels(run, checkpoint, vocabulary, labels, encoded)
    metrics = classification_metrics(encoded.labels, predicted, labels)
    wrong = np.flatnonzero(predicted != encoded.labels)[:SHOWN_MISTAKES]
    metrics["mistakes"] = [
        {
            "text": " ".join(encoded.examples[i].tokens),
            "label": labels[encoded.labels[i]],
            "predicted": labels[predicted[i]],
        }
        for i in wrong
    ]
    return metrics


def read_inputs(texts: list[str] | None, stdin: TextIO):
    """(where, text) of each input: the command-line texts, else the lines of standard input."""
    if texts:
        yield from ((f"input {number}", text) for number, text in enumerate(texts, 1))
        return
    for number, line in enumerate(stdin_lines(stdin), 1):
        yield f"standard input, line {number}", line.rstrip("\n")


def predict_run(run, checkpoint: Path, texts: list[str] | None, options: dict, out: TextIO) -> None:
    """`rnnkit predict`: one JSON line per input (label, probabilities, the words that were <unk>)."""
    config = run.config
    vocabulary, labels = load_run_files(run.path)
    probabilities_of = probability_function(run, checkpoint, vocabulary, labels, options.get("engine", "torch"))
    pending: list[tuple[str, list[str]]] = []

    def flush() -> None:
        probabilities = probabilities_of([vocabulary.encode(tokens) for _, tokens in pending])
        for (text, tokens), row in zip(pending, probabilities):
            record = {
                "text": text,
                "label": labels[int(np.argmax(row))],
                "probabilities": {label: float(p) for label, p in zip(labels, row)},
                "unknown": [token for token in tokens if token not in vocabulary],
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
        pending.clear()

    for where, text in read_inputs(texts, options.get("stdin", sys.stdin)):
        tokens = text.lower().split() if config.data.lowercase else text.split()
        if not tokens:
            raise UsageError(f"{where}: nothing to classify (no words)")
        pending.append((text, tokens))
        if len(pending) >= PREDICT_BATCH:
            flush()
    if pending:
        flush()


# ---- the command line ------------------------------------------------------------------------------------
def predict_command(run, checkpoint: Path, options: dict, out: TextIO) -> None:
    predict_run(run, checkpoint, options.get("texts"), options, out)


class ClassifierTask:
    """The classifier as the registry holds it (rnnkit.tasks.Task)."""

    name = "classifier"
    summary = "sentence classifier"
    config_class = ClassifierConfig
    data_keys = {"train": "data.train", "validation": "data.validation"}
    resumable_keys = ()
    commands = {"eval": eval_command, "predict": predict_command, "export": export_command}
    options = {"eval": (EVAL_DATA_OPTION,), "predict": (TEXTS_OPTION, ENGINE_OPTION), "export": EXPORT_OPTIONS}
    prepare = staticmethod(data.prepare)
    evaluate = staticmethod(evaluate_run)
    save = staticmethod(data.save)

    @staticmethod
    def upgrade_record(record: dict) -> dict:
        return record

    @staticmethod
    def build_model(config: ClassifierConfig, prepared):
        from rnnkit.tasks.classifier.torch import SentenceClassifier

        return SentenceClassifier(len(prepared.vocabulary), len(prepared.labels), config.model)

    @staticmethod
    def build_training(config: ClassifierConfig, prepared, device):
        from rnnkit.tasks.classifier.torch import ClassifierTraining

        return ClassifierTraining(config, prepared, device)

    @staticmethod
    def exported_model(run, checkpoint: Path):
        from rnnkit.tasks.classifier.torch import exported_model

        return exported_model(run, checkpoint, *load_run_files(run.path))


TASK = ClassifierTask()
