"""Tokenizers and the vocabulary that maps tokens to integer ids.

The tokenizers are in rnnkit.data.tokenizers. The vocabulary records which tokenizer it was built
with, so a saved run reads new text the way it read its corpus. A vocabulary may name an unknown token (`<unk>`): then
a token it does not hold maps to that one instead of being an error.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from rnnkit.atomic import read_json, write_text_atomically
from rnnkit.data.tokenizers import BPE_FILE, TOKENIZERS, CharacterTokenizer, WordTokenizer, make_tokenizer
from rnnkit.errors import UsageError

FORMAT = "rnnkit-vocabulary"
SHOWN_UNKNOWN = 10  # how many unknown tokens an error message lists before "and N more"


PAD, UNKNOWN = "<pad>", "<unk>"


def describe_names(names: Sequence[str], shown: int = 10) -> str:
    """The first few names, then how many more: an error message stays one readable line."""
    text = ", ".join(names[:shown])
    return text + (f" and {len(names) - shown:,} more" if len(names) > shown else "")


def describe_tokens(tokens: Sequence[str]) -> str:
    """'x' (U+0078), ... for an error message; code points make invisible characters visible."""

    def describe(token: str) -> str:
        if len(token) == 1:
            return f"{token!r} (U+{ord(token):04X})"
        return repr(token)

    shown = ", ".join(describe(token) for token in tokens[:SHOWN_UNKNOWN])
    if len(tokens) > SHOWN_UNKNOWN:
        shown += f" and {len(tokens) - SHOWN_UNKNOWN} more"
    return shown


class Vocabulary:
    """An ordered list of distinct tokens; a token's id is its position."""

    def __init__(self, tokens: Sequence[str], tokenizer: str | object = "char", unknown: str | None = None) -> None:
        self.tokens = list(tokens)
        self.tokenizer = make_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
        self.ids = {token: index for index, token in enumerate(self.tokens)}
        if len(self.ids) != len(self.tokens):
            raise UsageError("vocabulary: the token list contains duplicates")
        if not self.tokens:
            raise UsageError("vocabulary: no tokens")
        if unknown is not None and unknown not in self.ids:
            raise UsageError(f"vocabulary: the unknown token {unknown!r} is not in the token list")
        self.unknown_token = unknown

    @classmethod
    def from_counts(
        cls, counts: Counter, tokenizer: str, specials: Sequence[str], min_count: int = 1, max_size: int = 0
    ) -> "Vocabulary":
        """The specials, then the tokens seen at least min_count times, most frequent first (ties in
        alphabetical order), at most max_size in all (0: no limit). The specials' last is the unknown token."""
        kept = sorted(
            (token for token, count in counts.items() if count >= min_count and token not in specials),
            key=lambda token: (-counts[token], token),
        )
        tokens = [*specials, *kept]
        return cls(tokens[:max_size] if max_size else tokens, tokenizer, unknown=specials[-1] if specials else None)

    @classmethod
    def from_text(cls, text: str, tokenizer: str = "char") -> "Vocabulary":
        """Every distinct token of the text, sorted (so the ids do not depend on the text's order)."""
        return cls(sorted(set(make_tokenizer(tokenizer).split(text))), tokenizer)

    def fingerprint(self) -> str:
        """A digest of everything that decides how text becomes ids: the tokenizer and the tokens."""
        import hashlib

        model = getattr(self.tokenizer, "model", None)
        text = json.dumps([self.tokenizer.name, self.tokens, self.unknown_token, model.to_str() if model else None])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.ids

    def unknown(self, tokens: Iterable[str]) -> list[str]:
        """The distinct tokens not in the vocabulary, in order of first appearance."""
        return list(dict.fromkeys(token for token in tokens if token not in self.ids))

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """Token ids as int64; an unknown token is the unknown token's id, or (without one) an
        UsageError naming every unknown token."""
        if self.unknown_token is not None:
            unknown = self.ids[self.unknown_token]
            return np.fromiter((self.ids.get(token, unknown) for token in tokens), dtype=np.int64, count=len(tokens))
        try:
            return np.fromiter((self.ids[token] for token in tokens), dtype=np.int64, count=len(tokens))
        except KeyError:  # only now look for every unknown token, to name them all
            missing = self.unknown(tokens)
            raise UsageError(f"{self.tokenizer.unit} not in the vocabulary: {describe_tokens(missing)}") from None

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[int(index)] for index in ids]

    def encode_text(self, text: str) -> np.ndarray:
        return self.encode(self.tokenizer.split(text))

    def decode_text(self, ids: Iterable[int]) -> str:
        return self.tokenizer.join(self.decode(ids))

    def to_json(self) -> dict:
        record = {"format": FORMAT, "version": 1, "tokenizer": self.tokenizer.name, "tokens": self.tokens}
        return record | ({"unknown": self.unknown_token} if self.unknown_token is not None else {})

    @classmethod
    def from_json(cls, record: object, directory: Path | None = None, tokenizer_file: str = BPE_FILE) -> "Vocabulary":
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise UsageError("vocabulary: not an rnnkit vocabulary record")
        tokens, tokenizer = record.get("tokens"), record.get("tokenizer", "char")
        if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
            raise UsageError("vocabulary: 'tokens' must be a list of strings")
        if not isinstance(tokenizer, str) or tokenizer not in TOKENIZERS:
            raise UsageError(f"vocabulary: unknown tokenizer {tokenizer!r}; known: {', '.join(TOKENIZERS)}")
        if tokenizer == CharacterTokenizer.name:
            longer = [token for token in tokens if len(token) != 1 and token not in (PAD, UNKNOWN)]
            if longer:
                raise UsageError(f"vocabulary: a character vocabulary holds single characters, not {longer[0]!r}")
        if tokenizer == WordTokenizer.name:
            spaced = [token for token in tokens if not token or token.split() != [token]]
            if spaced:
                raise UsageError(f"vocabulary: a word vocabulary holds words without spaces, not {spaced[0]!r}")
        unknown = record.get("unknown")
        if unknown is not None and not isinstance(unknown, str):
            raise UsageError(f"vocabulary: 'unknown' must be a token, got {unknown!r}")
        return cls(tokens, make_tokenizer(tokenizer, directory, tokenizer_file), unknown)

    def save(self, path: Path | str) -> None:
        write_text_atomically(path, json.dumps(self.to_json(), ensure_ascii=False, indent=1) + "\n")

    @classmethod
    def load(cls, path: Path | str, tokenizer_file: str = BPE_FILE) -> "Vocabulary":
        """A saved vocabulary; a BPE one reads its tokenizer from `tokenizer_file` beside it."""
        record = read_json(path, "vocabulary")
        try:
            return cls.from_json(record, Path(path).parent, tokenizer_file)
        except UsageError as error:
            raise UsageError(f"{path}: {error}") from None


def check_learnable(vocabulary: "Vocabulary", reserved: int, labels: list[str], source: str, what: str) -> None:
    """UsageError for training data a model can only learn a meaningless 100% from: one label (or tag) in
    all of it, or a vocabulary that data.min_count / data.max_vocabulary reduced to its reserved tokens."""
    if len(labels) < 2:
        raise UsageError(
            f"{source}: every training example has the {what} {labels[0]!r}; a model needs two "
            f"or more {what}s to learn anything"
        )
    if len(vocabulary) <= reserved:
        raise UsageError(
            f"{source}: data.min_count and data.max_vocabulary leave no word in the vocabulary "
            f"(only {', '.join(vocabulary.tokens)}); lower data.min_count"
        )
