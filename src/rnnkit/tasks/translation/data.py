"""The translation task's data: parallel text read and checked, tokenized (byte-level BPE or words) and
encoded as ids, and the run's own files. No torch.

Parallel text is a TSV file of `source<TAB>target` lines, or a prefix naming two line-aligned files,
PREFIX.SOURCE and PREFIX.TARGET (the suffixes are data.source and data.target). Each side has a
vocabulary whose first four tokens are <pad>, <s>, </s> and <unk>; with data.joint_vocabulary both sides
share one. A run keeps them as vocabulary.json (and tokenizer.json) when joint, else as
source-vocabulary.json and target-vocabulary.json (and source-tokenizer.json, target-tokenizer.json).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from rnnkit.data.labelled import long_examples_record
from rnnkit.data.text import iter_lines, stdin_lines, with_absolute_paths
from rnnkit.data.tokenizers import BPE_FILE, BPETokenizer, train_bpe
from rnnkit.data.vocabulary import PAD, UNKNOWN, Vocabulary
from rnnkit.errors import UsageError
from rnnkit.rundir import VOCABULARY
from rnnkit.tasks.translation.config import DataConfig, TranslationConfig

START, END = "<s>", "</s>"
SPECIALS = (PAD, START, END, UNKNOWN)  # ids 0 to 3; the last is the unknown token
PAD_ID, START_ID, END_ID, UNKNOWN_ID = range(4)
SIDES = ("source", "target")


@dataclass(frozen=True)
class Pair:
    source: str
    target: str
    line: int  # where it was read (1-based), for messages


@dataclass
class EncodedPairs:
    """Pairs as token ids of each side, without <s> and </s>."""

    pairs: list[Pair]
    source: list[np.ndarray]
    target: list[np.ndarray]

    @cached_property  # read for every batch
    def lengths(self) -> np.ndarray:
        """The source lengths: what batches are bucketed by."""
        return np.array([len(ids) for ids in self.source])

    @cached_property
    def target_lengths(self) -> np.ndarray:
        return np.array([len(ids) for ids in self.target])


@dataclass
class TranslationData:
    source: Vocabulary
    target: Vocabulary
    train: EncodedPairs | None
    validation: EncodedPairs | None
    long_examples: dict = field(default_factory=dict)  # the start record's word on truncated sentences


# ---- reading parallel text ------------------------------------------------------------------------------
def sides_of(path: str, data: DataConfig) -> tuple[Path, Path] | None:
    """The two files of a prefix, or None when `path` is a file itself (a TSV file)."""
    if Path(path).is_file():
        return None
    if not data.source or not data.target:
        raise UsageError(
            f"{path}: no such file; a prefix of two files needs data.source and data.target "
            "(e.g. --set data.source=de --set data.target=en)"
        )
    files = (Path(f"{path}.{data.source}"), Path(f"{path}.{data.target}"))
    missing = [str(file) for file in files if not file.is_file()]
    if missing:
        raise UsageError(f"{path}: no such file, and no {' nor '.join(missing)} for the prefix")
    return files


def read_pairs(path: str, data: DataConfig) -> list[Pair]:
    """The pairs of a TSV file or of a prefix's two files; one line and exit 2 for misaligned files, an
    empty side or a malformed TSV line. Lowercased if data.lowercase."""
    files = sides_of(path, data)
    if files is None:
        return finished(tsv_pairs(iter_lines(path), path), path, data)
    pairs = []
    source_lines, target_lines = iter_lines(files[0]), iter_lines(files[1])
    number = 0
    while True:
        source, target = next(source_lines, None), next(target_lines, None)
        if source is None or target is None:
            if source is not None or target is not None:
                short, long = (files[0], files[1]) if source is None else (files[1], files[0])
                raise UsageError(
                    f"{path}: the files are not line-aligned: {short} ends after {number} lines, {long} goes on"
                )
            break
        number += 1
        pairs.append(checked_pair(source.rstrip("\r\n"), target.rstrip("\r\n"), number, path))
    return finished(pairs, path, data)


def stdin_pairs(stream, data: DataConfig) -> list[Pair]:
    """The source<TAB>target lines of standard input, as read_pairs reads a TSV file."""
    return finished(tsv_pairs(stdin_lines(stream), "standard input"), "standard input", data)


def tsv_pairs(lines, where: str) -> list[Pair]:
    """The pairs of source<TAB>target lines (blank lines are skipped)."""
    pairs = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise UsageError(f"{where}, line {number}: expected source<TAB>target, found no tab")
        pairs.append(checked_pair(fields[0], fields[1], number, where))
    return pairs


def finished(pairs: list[Pair], where: str, data: DataConfig) -> list[Pair]:
    """The pairs read, lowercased if data.lowercase; none at all is an error."""
    if not pairs:
        raise UsageError(f"{where}: no sentence pairs")
    if data.lowercase:
        pairs = [Pair(pair.source.lower(), pair.target.lower(), pair.line) for pair in pairs]
    return pairs


def checked_pair(source: str, target: str, number: int, path: str) -> Pair:
    for side, text in (("source", source), ("target", target)):
        if not text.strip():
            raise UsageError(f"{path}, line {number}: the {side} side is empty")
    return Pair(source.strip(), target.strip(), number)


# ---- tokenizing and encoding ----------------------------------------------------------------------------
def tokens_of(vocabulary: Vocabulary, text: str) -> list[str]:
    if isinstance(vocabulary.tokenizer, BPETokenizer):
        return vocabulary.tokenizer.split(text)
    return text.split()


def detokenize(vocabulary: Vocabulary, ids) -> str:
    """The text of target ids, without <pad>, <s> and </s> (an <unk> of word tokens is written as such)."""
    ids = [int(i) for i in ids if int(i) not in (PAD_ID, START_ID, END_ID)]
    if isinstance(vocabulary.tokenizer, BPETokenizer):
        return vocabulary.tokenizer.join(vocabulary.decode(i for i in ids if i != UNKNOWN_ID)).strip()
    return " ".join(vocabulary.decode(ids))


MAX_LENGTH_RATIO = 2.0  # a translation's length limit, in source tokens (--max-length-ratio's default)


def max_target_lengths(source_lengths, ratio: float, max_length: int) -> np.ndarray:
    """How many target tokens (the end token included) a translation may have: ratio × the source's
    tokens + 5, at most data.max_length and the end token."""
    return np.minimum(np.floor(ratio * np.asarray(source_lengths)).astype(np.int64) + 5, max_length + 1)


def token_texts(vocabulary: Vocabulary, ids) -> list[str]:
    """Each token's own text, for people to read (a byte-level BPE token decoded on its own)."""
    if not isinstance(vocabulary.tokenizer, BPETokenizer):
        return vocabulary.decode(ids)
    model = vocabulary.tokenizer.model
    return [
        vocabulary.tokens[i] if i < len(SPECIALS) else model.decode([model.token_to_id(vocabulary.tokens[i])])
        for i in map(int, ids)
    ]


def encode_side(vocabulary: Vocabulary, texts: list[str], max_length: int) -> tuple[list[np.ndarray], int]:
    """Each text's ids, at most max_length of them, and how many texts were longer."""
    encoded, truncated = [], 0
    for text in texts:
        ids = vocabulary.encode(tokens_of(vocabulary, text))
        if len(ids) > max_length:
            ids, truncated = ids[:max_length], truncated + 1
        encoded.append(ids)
    return encoded, truncated


def encode(pairs: list[Pair], source: Vocabulary, target: Vocabulary, max_length: int) -> tuple[EncodedPairs, int]:
    source_ids, long_sources = encode_side(source, [pair.source for pair in pairs], max_length)
    target_ids, long_targets = encode_side(target, [pair.target for pair in pairs], max_length)
    return EncodedPairs(pairs, source_ids, target_ids), long_sources + long_targets


def build_vocabulary(texts: list[str], data: DataConfig, what: str) -> Vocabulary:
    """A side's vocabulary learnt from training text: byte-level BPE of data.vocabulary_size tokens, or the
    words seen data.min_count times (at most data.vocabulary_size, 0: all), after the four specials."""
    if data.tokenizer == "bpe":
        bpe = train_bpe(iter(texts), data.vocabulary_size, what, prefix_space=True)
        return Vocabulary([*SPECIALS, *(token for token in bpe.tokens() if token not in SPECIALS)], bpe, UNKNOWN)
    counts = Counter(word for text in texts for word in text.split())
    vocabulary = Vocabulary.from_counts(counts, "word", SPECIALS, data.min_count, data.vocabulary_size)
    if len(vocabulary) <= len(SPECIALS):
        raise UsageError(f"{what}: no word is seen data.min_count = {data.min_count} times; lower it")
    return vocabulary


def prepare(config: TranslationConfig, run_path: Path | None) -> tuple[TranslationConfig, TranslationData]:
    """Read and check the parallel text; a new run learns its vocabularies from the training pairs, an
    existing run reads its own."""
    data = config.data
    if not data.train:
        raise UsageError("data.train: no training data; give a TSV file or a prefix with --data (or set data.train)")
    if run_path is None:
        config = replace(config, data=with_absolute_paths(data, ("train", "validation")))
        data = config.data
    pairs = read_pairs(data.train, data)
    if data.validation:
        train, validation = pairs, read_pairs(data.validation, data)
    else:
        cut = int(len(pairs) * data.train_fraction)
        train, validation = pairs[:cut], pairs[cut:]
        if not train or not validation:
            raise UsageError(f"{data.train}: too few pairs to hold out a validation part; give one with --val")
    if run_path is None:
        if data.joint_vocabulary:
            source = target = build_vocabulary(
                [text for pair in train for text in (pair.source, pair.target)], data, data.train
            )
        else:
            source = build_vocabulary([pair.source for pair in train], data, f"{data.train} (source)")
            target = build_vocabulary([pair.target for pair in train], data, f"{data.train} (target)")
    else:
        source, target = load_run_files(run_path)
    encoded_train, long_train = encode(train, source, target, data.max_length)
    encoded_validation, long_validation = encode(validation, source, target, data.max_length)
    record = long_examples_record(long_train + long_validation, data.max_length, "truncated", "tokens")
    return config, TranslationData(source, target, encoded_train, encoded_validation, record)


def file_names(joint: bool, side: str) -> tuple[str, str]:
    """(vocabulary file, tokenizer file) of a side in a run directory."""
    return (VOCABULARY, BPE_FILE) if joint else (f"{side}-{VOCABULARY}", f"{side}-{BPE_FILE}")


def save(data: TranslationData, directory: Path) -> None:
    joint = data.source is data.target
    for side, vocabulary in (("source", data.source), ("target", data.target))[: 1 if joint else 2]:
        vocabulary_file, tokenizer_file = file_names(joint, side)
        if isinstance(vocabulary.tokenizer, BPETokenizer):
            vocabulary.tokenizer.model.save(str(directory / tokenizer_file))
        vocabulary.save(directory / vocabulary_file)


def load_run_files(run_path: Path) -> tuple[Vocabulary, Vocabulary]:
    """A run's source and target vocabularies (the same object when joint)."""
    run_path = Path(run_path)
    joint = (run_path / VOCABULARY).is_file()
    sides = []
    for side in SIDES[: 1 if joint else 2]:
        vocabulary_file, tokenizer_file = file_names(joint, side)
        if not (run_path / vocabulary_file).is_file():
            raise UsageError(f"{run_path}: no {vocabulary_file}; is it a translation run?")
        vocabulary = Vocabulary.load(run_path / vocabulary_file, tokenizer_file)
        if tuple(vocabulary.tokens[:4]) != SPECIALS or vocabulary.unknown_token != UNKNOWN:
            raise UsageError(
                f"{run_path / vocabulary_file}: a translation vocabulary starts with {', '.join(SPECIALS)}"
            )
        sides.append(vocabulary)
    return (sides[0], sides[0]) if joint else (sides[0], sides[1])
