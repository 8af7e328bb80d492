"""The sentence-classification task (many-to-one): its configuration, its run files, its metrics and
its commands (`eval`, `predict`).

A sentence is a sequence of whitespace-separated words; a recurrent layer reads it and the sentence
vector (its last state, or the max or mean over time of the top layer's outputs) goes to a linear
layer and a softmax over the labels (EQUATIONS.md, "Classification"). The network, its training and
evaluation are in `classifier_torch.py`, the NumPy engine for `predict --engine numpy` in
`classifier_numpy.py`; this module does not import torch.

Sections it owns: [model] and [data]. Run files: vocabulary.json (the words, `<pad>` and `<unk>`
first) and labels.json (the labels in id order).
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TextIO

import numpy as np

from rnnkit.atomic import read_json, write_text_atomically
from rnnkit.config import LabelledDataSettings, RunConfig, SequenceModelSettings, choice, require
from rnnkit.data.labelled import FORMATS, Example, read_examples
from rnnkit.data.text import resolve_corpus
from rnnkit.data.vocabulary import PAD, UNKNOWN, Vocabulary, describe_tokens
from rnnkit.errors import UsageError
from rnnkit.rundir import MODEL_WEIGHTS, VOCABULARY, load_numpy_weights
from rnnkit.tasks import check_engine

LABELS = "labels.json"
LABELS_FORMAT = "rnnkit-labels"
POOLINGS = ("last", "max", "mean")
SHOWN_MISTAKES = 10  # misclassified examples listed by `rnnkit eval`
PREDICT_BATCH = 256  # lines of standard input classified together


@dataclass(frozen=True)
class ModelConfig(SequenceModelSettings):
    embedding_size: int = 100
    hidden_size: int = 150
    dropout: float = 0.5  # between recurrent layers and on the sentence vector (training only)
    bidirectional: bool = True
    pooling: str = "max"  # the sentence vector: last (final states), max or mean over time
    word_dropout: float = 0.0  # in training, a word becomes <unk> with this probability
    embeddings_file: str = ""  # pretrained word vectors (GloVe or word2vec text format); empty: none
    freeze_embeddings: bool = False  # keep the embeddings as initialised
    embedding_init_scale: float = 0.0  # >0: embeddings start uniform in ±scale; 0: torch's normal N(0, 1)
    adversarial: float = 0.0  # >0: also train on embeddings moved this far (L2, per sentence) up the loss gradient

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("model.pooling", self.pooling, POOLINGS)
        require(self.adversarial >= 0, "model.adversarial", "expected 0 or a positive number", self.adversarial)
        require(0 <= self.word_dropout < 1, "model.word_dropout", "expected a probability in [0, 1)", self.word_dropout)
        require(self.embedding_init_scale >= 0, "model.embedding_init_scale", "expected 0 or a positive number",
                self.embedding_init_scale)


@dataclass(frozen=True)
class DataConfig(LabelledDataSettings):
    format: str = "auto"  # auto, label (label and sentence), tsv (sentence, tab, label), trees (SST)
    phrases: bool = False  # trees: train on every labelled phrase, not only whole sentences

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("data.format", self.format, FORMATS)


@dataclass(frozen=True)
class ClassifierConfig(RunConfig):
    task: str = "classifier"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)


@dataclass
class Encoded:
    """Examples as token ids and label ids, with the examples themselves (to show mistakes)."""

    examples: list[Example]
    ids: list[np.ndarray]
    labels: np.ndarray

    @cached_property  # read for every batch
    def lengths(self) -> np.ndarray:
        return np.array([len(ids) for ids in self.ids])


@dataclass
class ClassifierData:
    vocabulary: Vocabulary
    labels: list[str]
    train: Encoded | None
    validation: Encoded | None
    vectors: dict[int, np.ndarray] | None = None  # pretrained vectors of a new run, by token id
    vector_lines: int = 0


# ---- run files and data -----------------------------------------------------------------------------
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


def load_vocabulary(path: Path) -> Vocabulary:
    vocabulary = Vocabulary.load(path)
    if vocabulary.tokens[:2] != [PAD, UNKNOWN] or vocabulary.unknown_token != UNKNOWN:
        raise UsageError(f"{path}: a classifier's vocabulary starts with {PAD} and {UNKNOWN}")
    return vocabulary


def encode(examples: list[Example], vocabulary: Vocabulary, labels: list[str], source: str) -> Encoded:
    """Token ids (unknown words are <unk>) and label ids; a label outside the label set is an error."""
    index = {label: number for number, label in enumerate(labels)}
    unknown = sorted({example.label for example in examples} - set(index))
    if unknown:
        raise UsageError(f"{source}: labels not in the training set ({', '.join(labels)}): {describe_tokens(unknown)}")
    return Encoded(examples, [vocabulary.encode(example.tokens) for example in examples],
                   np.array([index[example.label] for example in examples], dtype=np.int64))


def prepare(config: ClassifierConfig, run_path: Path | None) -> tuple[ClassifierConfig, ClassifierData]:
    """Read and check the labelled data; a new run builds its vocabulary and label set from the
    training examples (and reads its pretrained vectors), an existing run reads its own."""
    data = config.data
    if not data.train:
        raise UsageError("data.train: no training file; give one with --data FILE (or set data.train)")
    if run_path is None:
        config = replace(config, data=replace(data, **{key: str(resolve_corpus(getattr(data, key)))
                                                       for key in ("train", "validation") if getattr(data, key)}),
                         model=replace(config.model, embeddings_file=str(resolve_corpus(config.model.embeddings_file)))
                         if config.model.embeddings_file else config.model)
        data = config.data
    split = None if data.validation else data.train_fraction
    train, held_out = read_examples(data.train, data.format, data.phrases, data.lowercase, split)
    validation = read_examples(data.validation, data.format, False, data.lowercase)[0] if data.validation else held_out
    if not validation:
        raise UsageError(f"{data.train}: too few sentences to hold out a validation part; give one with --val FILE")
    if run_path is None:
        counts = Counter(token for example in train for token in example.tokens)
        vocabulary = Vocabulary.from_counts(counts, "word", (PAD, UNKNOWN), data.min_count, data.max_vocabulary)
        labels = sorted({example.label for example in train})
    else:
        vocabulary, labels = load_vocabulary(run_path / VOCABULARY), load_labels(run_path / LABELS)
    prepared = ClassifierData(vocabulary, labels, encode(train, vocabulary, labels, data.train),
                              encode(validation, vocabulary, labels, data.validation or data.train))
    if run_path is None and config.model.embeddings_file:
        from rnnkit.data.vectors import read_vectors

        prepared.vectors, prepared.vector_lines = read_vectors(config.model.embeddings_file, vocabulary,
                                                               config.model.embedding_size)
    return config, prepared


def save(data: ClassifierData, directory: Path) -> None:
    data.vocabulary.save(directory / VOCABULARY)
    save_labels(data.labels, directory / LABELS)


# ---- metrics ----------------------------------------------------------------------------------------
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
        "per_class": {label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
                      for label, p, r, f, n in zip(labels, precision, recall, f1, true_counts)},
        "confusion": {"labels": labels, "matrix": confusion.tolist()},
        "examples": int(len(true)),
    }


# ---- commands -----------------------------------------------------------------------------------------
def probability_function(run, checkpoint: Path, vocabulary: Vocabulary, labels: list[str], engine: str):
    """The checkpoint's model as a function: list of token-id arrays -> probabilities (N, K)."""
    check_engine(engine)
    if engine == "numpy":
        from rnnkit.tasks.classifier_numpy import numpy_probability_function

        path = checkpoint / MODEL_WEIGHTS
        return numpy_probability_function(run.config.model, load_numpy_weights(path), len(vocabulary), len(labels), path)
    from rnnkit.tasks.classifier_torch import torch_probability_function

    return torch_probability_function(run, checkpoint, vocabulary, labels)


def evaluate_run(run, checkpoint: Path, data_path: str | None) -> dict:
    """`rnnkit eval`: the metrics on a labelled file (default: the run's validation data), with the
    first misclassified examples."""
    from rnnkit.tasks.classifier_torch import predict_labels

    config = run.config
    vocabulary, labels = load_vocabulary(run.path / VOCABULARY), load_labels(run.path / LABELS)
    if data_path:
        examples = read_examples(data_path, config.data.format, False, config.data.lowercase)[0]
        encoded = encode(examples, vocabulary, labels, data_path)
    elif config.data.validation:
        examples = read_examples(config.data.validation, config.data.format, False, config.data.lowercase)[0]
        encoded = encode(examples, vocabulary, labels, config.data.validation)
    else:  # the held-out end of the training file
        encoded = prepare(config, run.path)[1].validation
    predicted = predict_labels(run, checkpoint, vocabulary, labels, encoded)
    metrics = classification_metrics(encoded.labels, predicted, labels)
    wrong = np.flatnonzero(predicted != encoded.labels)[:SHOWN_MISTAKES]
    metrics["mistakes"] = [{"text": " ".join(encoded.examples[i].tokens), "label": labels[encoded.labels[i]],
                            "predicted": labels[predicted[i]]} for i in wrong]
    return metrics


def read_inputs(texts: list[str] | None, stdin: TextIO):
    """(where, text) of each input: the command-line texts, else the lines of standard input."""
    if texts:
        yield from ((f"input {number}", text) for number, text in enumerate(texts, 1))
        return
    for number, line in enumerate(stdin, 1):
        yield f"standard input, line {number}", line.rstrip("\n")


def predict_run(run, checkpoint: Path, texts: list[str] | None, options: dict, out: TextIO) -> None:
    """`rnnkit predict`: one JSON line per input (label, probabilities, the words that were <unk>)."""
    config = run.config
    vocabulary, labels = load_vocabulary(run.path / VOCABULARY), load_labels(run.path / LABELS)
    probabilities_of = probability_function(run, checkpoint, vocabulary, labels, options.get("engine", "torch"))
    pending: list[tuple[str, list[str]]] = []

    def flush() -> None:
        probabilities = probabilities_of([vocabulary.encode(tokens) for _, tokens in pending])
        for (text, tokens), row in zip(pending, probabilities):
            record = {"text": text, "label": labels[int(np.argmax(row))],
                      "probabilities": {label: float(p) for label, p in zip(labels, row)},
                      "unknown": [token for token in tokens if token not in vocabulary]}
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


class ClassifierTask:
    """The classifier as the run lifecycle (rnnkit.train.runs) sees it."""

    name = "classifier"
    summary = "sentence classifier"
    config_class = ClassifierConfig
    commands = ("eval", "predict")
    data_keys = {"train": "data.train", "validation": "data.validation"}
    prepare = staticmethod(prepare)
    save = staticmethod(save)
    evaluate = staticmethod(evaluate_run)
    predict = staticmethod(predict_run)

    @staticmethod
    def upgrade_record(record: dict) -> dict:
        return record

    @staticmethod
    def model(config: ClassifierConfig, data: ClassifierData):
        from rnnkit.tasks.classifier_torch import SentenceClassifier

        return SentenceClassifier(len(data.vocabulary), len(data.labels), config.model)

    @staticmethod
    def build(config: ClassifierConfig, data: ClassifierData, device):
        from rnnkit.tasks.classifier_torch import ClassifierTraining

        return ClassifierTraining(config, data, device)


TASK = ClassifierTask()
