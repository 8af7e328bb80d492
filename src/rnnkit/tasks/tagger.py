"""The sequence-tagging task (many-to-many): a tag for every word, e.g. parts of speech. Its
configuration, run files, metrics and commands (`eval`, `predict`).

Each word is its embedding joined with a character-level encoding of its spelling (a small BiLSTM
over its characters, what makes an unseen word taggable); a stacked bidirectional recurrent layer
reads the sentence (optionally with residual connections between layers); a linear layer scores the
tags of each word (EQUATIONS.md, "Tagging"), decoded by argmax or, with `model.crf`, by a
linear-chain CRF's Viterbi path. The network is in `tagger_torch.py`, the NumPy engine in
`tagger_numpy.py`; this module does not import torch.

Sections it owns: [model] and [data]. Run files: vocabulary.json (words), characters.json
(characters), tags.json (the tag set in id order).
"""
from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TextIO

import numpy as np

from rnnkit.config import LabelledDataSettings, RunConfig, SequenceModelSettings, choice, require
from rnnkit.data.tagged import COLUMN_INDEX, COLUMNS, FORMATS, TaggedSentence, read_tagged, tsv_sentences
from rnnkit.data.text import resolve_corpus
from rnnkit.data.vocabulary import PAD, UNKNOWN, Vocabulary
from rnnkit.errors import UsageError
from rnnkit.rundir import MODEL_WEIGHTS, VOCABULARY, load_numpy_weights
from rnnkit.tasks import check_engine
from rnnkit.tasks.classifier import load_labels, save_labels

CHARACTERS, TAGS = "characters.json", "tags.json"
CHAR_ENCODERS = ("none", "bilstm")
MAX_WORD_CHARACTERS = 30  # longer words are read by their first characters (a URL is not a word to spell out)
SHOWN_CONFUSIONS = 10


@dataclass(frozen=True)
class ModelConfig(SequenceModelSettings):
    embedding_size: int = 100
    hidden_size: int = 128
    num_layers: int = 2
    dropout: float = 0.33  # on the word representations, between layers and before the output layer
    bidirectional: bool = True
    word_dropout: float = 0.0  # in training, a word becomes <unk> with this probability (its characters stay)
    char_encoder: str = "bilstm"  # none, or bilstm: a BiLSTM over each word's characters
    char_embedding_size: int = 32
    char_hidden_size: int = 50  # per direction
    residual: bool = False  # skip connections between stacked layers (from the second layer on)
    crf: bool = False  # a linear-chain CRF output layer, decoded by Viterbi

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("model.char_encoder", self.char_encoder, CHAR_ENCODERS)
        require(0 <= self.word_dropout < 1, "model.word_dropout", "expected a probability in [0, 1)", self.word_dropout)
        for key in ("char_embedding_size", "char_hidden_size"):
            require(getattr(self, key) >= 1, f"model.{key}", "expected a positive integer", getattr(self, key))


@dataclass(frozen=True)
class DataConfig(LabelledDataSettings):
    format: str = "auto"  # auto, conllu, tsv
    column: str = "upos"  # CoNLL-U: the tag column, upos or xpos

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("data.format", self.format, FORMATS)
        choice("data.column", self.column, COLUMNS)


@dataclass(frozen=True)
class TaggerConfig(RunConfig):
    task: str = "tagger"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)


@dataclass
class EncodedSentences:
    """Sentences as word ids, each word's character ids, and tag ids (-1: a tag not in the tag set)."""

    sentences: list[TaggedSentence]
    words: list[np.ndarray]
    characters: list[list[np.ndarray]]
    tags: list[np.ndarray]

    @cached_property  # read for every batch
    def lengths(self) -> np.ndarray:
        return np.array([len(words) for words in self.words])


@dataclass
class TaggerData:
    vocabulary: Vocabulary
    characters: Vocabulary
    tags: list[str]
    train: EncodedSentences | None
    validation: EncodedSentences | None


def word_forms(tokens: list[str], lowercase: bool) -> list[str]:
    return [token.lower() for token in tokens] if lowercase else list(tokens)


def encode(sentences: list[TaggedSentence], data: "TaggerData", lowercase: bool) -> EncodedSentences:
    index = {tag: number for number, tag in enumerate(data.tags)}
    return EncodedSentences(
        sentences,
        [data.vocabulary.encode(word_forms(sentence.tokens, lowercase)) for sentence in sentences],
        [[data.characters.encode(list(token[:MAX_WORD_CHARACTERS])) for token in sentence.tokens] for sentence in sentences],
        [np.array([index.get(tag, -1) for tag in sentence.tags], dtype=np.int64) for sentence in sentences],
    )


def load_run_files(run_path: Path) -> tuple[Vocabulary, Vocabulary, list[str]]:
    vocabulary, characters = Vocabulary.load(run_path / VOCABULARY), Vocabulary.load(run_path / CHARACTERS)
    for path, loaded in ((run_path / VOCABULARY, vocabulary), (run_path / CHARACTERS, characters)):
        if loaded.tokens[:2] != [PAD, UNKNOWN] or loaded.unknown_token != UNKNOWN:
            raise UsageError(f"{path}: a tagger's vocabulary starts with {PAD} and {UNKNOWN}")
    return vocabulary, characters, load_labels(run_path / TAGS)


def prepare(config: TaggerConfig, run_path: Path | None) -> tuple[TaggerConfig, TaggerData]:
    """Read and check the tagged data; a new run builds its word and character vocabularies and its
    tag set from the training sentences, an existing run reads its own."""
    data = config.data
    if not data.train:
        raise UsageError("data.train: no training file; give one with --data FILE (or set data.train)")
    if run_path is None:
        config = replace(config, data=replace(data, **{key: str(resolve_corpus(getattr(data, key)))
                                                       for key in ("train", "validation") if getattr(data, key)}))
        data = config.data
    train = read_tagged(data.train, data.format, data.column)
    if data.validation:
        validation = read_tagged(data.validation, data.format, data.column)
    else:
        cut = int(len(train) * data.train_fraction)
        train, validation = train[:cut], train[cut:]
        if not train or not validation:
            raise UsageError(f"{data.train}: too few sentences to hold out a validation part; give one with --val FILE")
    if run_path is None:
        words = Counter(word for sentence in train for word in word_forms(sentence.tokens, data.lowercase))
        letters = Counter(letter for sentence in train for token in sentence.tokens for letter in token)
        prepared = TaggerData(Vocabulary.from_counts(words, "word", (PAD, UNKNOWN), data.min_count, data.max_vocabulary),
                              Vocabulary.from_counts(letters, "char", (PAD, UNKNOWN)),
                              sorted({tag for sentence in train for tag in sentence.tags}), None, None)
    else:
        prepared = TaggerData(*load_run_files(run_path), None, None)
    prepared.train = encode(train, prepared, data.lowercase)
    prepared.validation = encode(validation, prepared, data.lowercase)
    return config, prepared


def save(data: TaggerData, directory: Path) -> None:
    data.vocabulary.save(directory / VOCABULARY)
    data.characters.save(directory / CHARACTERS)
    save_labels(data.tags, directory / TAGS)


# ---- metrics ----------------------------------------------------------------------------------------------
def tagging_metrics(gold: list[np.ndarray], predicted: list[np.ndarray], unseen: list[np.ndarray], tags: list[str],
                    gold_names: list[list[str]]) -> dict:
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
        "tokens": int(len(flat_gold)), "sentences": len(gold),
        "per_tag": per_tag,
        "confusions": [{"gold": g, "predicted": p, "count": n} for (g, p), n in confusions.most_common(SHOWN_CONFUSIONS)],
    }


# ---- commands -------------------------------------------------------------------------------------------
def tagging_function(run, checkpoint: Path, data: TaggerData, engine: str):
    """The checkpoint's model as a function: EncodedSentences -> predicted tag ids per sentence."""
    check_engine(engine)
    if engine == "numpy":
        from rnnkit.tasks.tagger_numpy import numpy_tagging_function

        path = checkpoint / MODEL_WEIGHTS
        return numpy_tagging_function(run.config.model, load_numpy_weights(path), data, path)
    from rnnkit.tasks.tagger_torch import torch_tagging_function

    return torch_tagging_function(run, checkpoint, data)


def evaluate_run(run, checkpoint: Path, data_path: str | None) -> dict:
    """`rnnkit eval`: the metrics on a tagged file (default: the run's validation data)."""
    config = run.config
    data = TaggerData(*load_run_files(run.path), None, None)
    if data_path:
        encoded = encode(read_tagged(data_path, config.data.format, config.data.column), data, config.data.lowercase)
    elif config.data.validation:
        encoded = encode(read_tagged(config.data.validation, config.data.format, config.data.column), data,
                         config.data.lowercase)
    else:
        encoded = prepare(config, run.path)[1].validation
    predicted = tagging_function(run, checkpoint, data, "torch")(encoded)
    unseen = [words == 1 for words in encoded.words]  # <unk>: not in the vocabulary
    return tagging_metrics(encoded.tags, predicted, unseen, data.tags,
                           [[tag or "_" for tag in sentence.tags] for sentence in encoded.sentences])


def conllu_output(sentence: TaggedSentence, tags: list[str], column: str) -> list[str]:
    """The sentence's CoNLL-U lines with the tag column filled and every other byte kept; a sentence
    read from plain text gets a `# text` comment and minimal token lines."""
    if not sentence.lines:
        rows = [f"{i}\t{token}\t_\t_\t_\t_\t_\t_\t_\t_" for i, token in enumerate(sentence.tokens, 1)]
        sentence = TaggedSentence(sentence.tokens, sentence.tags, [f"# text = {' '.join(sentence.tokens)}", *rows])
    output, position = [], 0
    for line in sentence.lines:
        fields = line.split("\t")
        if not line.startswith("#") and fields[0].isdigit():
            if position >= len(tags) or len(fields) < 10:
                raise UsageError(f"a CoNLL-U sentence at line {sentence.first_line}: its token lines do not match "
                                 f"the {len(tags)} words the model read")
            fields[COLUMN_INDEX[column]] = tags[position]
            position += 1
            line = "\t".join(fields)
        output.append(line)
    if position != len(tags):
        raise UsageError(f"a CoNLL-U sentence at line {sentence.first_line}: {position} token lines for {len(tags)} words")
    return output


def predict_run(run, checkpoint: Path, texts: list[str] | None, options: dict, out: TextIO) -> None:
    """`rnnkit predict`: CoNLL-U (from --conllu FILE or plain-text lines) or tsv, with predicted tags."""
    config = run.config
    conllu_path, format = options.get("conllu"), options.get("format") or "text"
    if conllu_path:
        sentences = read_tagged(conllu_path, "conllu", config.data.column, require_tags=False)
    elif format == "tsv":
        sentences = tsv_sentences(Path("standard input"), options.get("stdin", sys.stdin).read(), require_tags=False)
        if not sentences:
            raise UsageError("standard input: nothing to tag (no tokens)")
    else:
        lines = texts or [line.rstrip("\n") for line in options.get("stdin", sys.stdin)]
        sentences = []
        for number, line in enumerate(lines, 1):
            if not line.split():
                raise UsageError(f"{'input' if texts else 'standard input, line'} {number}: nothing to tag (no words)")
            sentences.append(TaggedSentence(line.split(), [None] * len(line.split())))
    data = TaggerData(*load_run_files(run.path), None, None)
    predicted = tagging_function(run, checkpoint, data, options.get("engine", "torch"))(
        encode(sentences, data, config.data.lowercase))
    for sentence, ids in zip(sentences, predicted):
        tags = [data.tags[i] for i in ids]
        if format == "tsv" and not conllu_path:
            out.write("".join(f"{token}\t{tag}\n" for token, tag in zip(sentence.tokens, tags)) + "\n")
        else:
            out.write("\n".join(conllu_output(sentence, tags, config.data.column)) + "\n\n")
    out.flush()


class TaggerTask:
    """The tagger as the run lifecycle (rnnkit.train.runs) sees it."""

    name = "tagger"
    summary = "sequence tagger"
    config_class = TaggerConfig
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
    def model(config: TaggerConfig, data: TaggerData):
        from rnnkit.tasks.tagger_torch import Tagger

        return Tagger(len(data.vocabulary), len(data.characters), len(data.tags), config.model)

    @staticmethod
    def build(config: TaggerConfig, data: TaggerData, device):
        from rnnkit.tasks.tagger_torch import TaggerTraining

        return TaggerTraining(config, data, device)


TASK = TaggerTask()
