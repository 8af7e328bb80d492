"""Tokenizers: text to tokens and back.

- `char`: each Unicode code point is a token (a multi-byte UTF-8 character is one token).
- `word`: whitespace-separated words, and `<eos>` after every line end (the PTB/WikiText convention:
  each line of a corpus ends with a predicted `<eos>`). Text without a final line break, such as a
  prime, gets no `<eos>` after its last word.
- `bpe`: byte-level BPE trained with the `tokenizers` library on a training text and saved as
  `tokenizer.json` in the run directory.

Every tokenizer has `split(text) -> tokens`, `join(tokens) -> text`, a `name` and the `unit` it counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from rnnkit.errors import UsageError

EOS = "<eos>"
BPE_FILE = "tokenizer.json"


class CharacterTokenizer:
    name = "char"
    unit = "characters"

    def split(self, text: str) -> list[str]:
        return list(text)

    def join(self, tokens: Iterable[str]) -> str:
        return "".join(tokens)


class WordTokenizer:
    name = "word"
    unit = "words"

    def split(self, text: str) -> list[str]:
        tokens: list[str] = []
        lines = text.split("\n")
        for line in lines[:-1]:
            tokens += line.split()
            tokens.append(EOS)
        return tokens + lines[-1].split()

    def join(self, tokens: Iterable[str]) -> str:
        pieces: list[str] = []
        for token in tokens:
            if token == EOS:
                pieces.append("\n")
            else:
                pieces.append(token if not pieces or pieces[-1] == "\n" else " " + token)
        return "".join(pieces)


class BPETokenizer:
    """Byte-level BPE (the `tokenizers` library): any text is representable, no token is unknown."""

    name = "bpe"
    unit = "tokens"

    def __init__(self, model) -> None:
        self.model = model  # a tokenizers.Tokenizer

    @classmethod
    def load(cls, path: Path) -> "BPETokenizer":
        Tokenizer = tokenizers_library().Tokenizer

        try:
            return cls(Tokenizer.from_file(str(path)))
        except Exception as error:  # the library reports a missing or malformed file in its own way
            raise UsageError(f"{path}: not a BPE tokenizer file ({str(error).splitlines()[0][:100]})") from None

    def split(self, text: str) -> list[str]:
        return self.model.encode(text).tokens

    def join(self, tokens: Iterable[str]) -> str:
        return self.model.decode([self.model.token_to_id(token) for token in tokens])

    def tokens(self) -> list[str]:
        """Every token, in id order."""
        return [self.model.id_to_token(index) for index in range(self.model.get_vocab_size())]


def tokenizers_library():
    """The `tokenizers` package (an optional dependency); one line naming it when it is missing."""
    try:
        import tokenizers
    except ImportError:
        raise UsageError("data.tokenizer = 'bpe' needs the tokenizers package: pip install 'rnnkit[bpe]'") from None
    return tokenizers


def train_bpe(lines: Iterator[str], vocabulary_size: int, source: str, prefix_space: bool = False) -> BPETokenizer:
    """A byte-level BPE learned from training text; refused if the text is too small to learn merges.
    With prefix_space, a text's first word is read as if a space came before it, as every other word
    is (for sentences read one at a time); its decoded text then starts with that space."""
    library = tokenizers_library()
    Tokenizer, decoders, models, pre_tokenizers, trainers = (
        library.Tokenizer,
        library.decoders,
        library.models,
        library.pre_tokenizers,
        library.trainers,
    )
    model = Tokenizer(models.BPE())
    model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix_space)
    model.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocabulary_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    model.train_from_iterator(lines, trainer)
    if model.get_vocab_size() <= len(pre_tokenizers.ByteLevel.alphabet()):
        raise UsageError(f"{source}: too little text to learn any BPE merge; use more text or data.tokenizer = 'char'")
    return BPETokenizer(model)


def stream_text(tokenizer, tokens: Iterable[str], after: str = "") -> Iterator[str]:
    """The text of tokens, a piece as each token comes (for streaming generation), continuing the text
    `after`: "".join of the pieces is what follows `after` in after + join(tokens)."""
    if tokenizer.name == WordTokenizer.name:
        at_line_start = after == "" or after.endswith("\n")
        for token in tokens:
            piece = "\n" if token == EOS else (token if at_line_start else " " + token)
            at_line_start = token == EOS
            yield piece
    elif tokenizer.name == BPETokenizer.name:
        ids, written = [], ""
        for token in tokens:
            ids.append(tokenizer.model.token_to_id(token))
            text = tokenizer.model.decode(ids)
            if not text.endswith("\ufffd"):  # hold back a character whose bytes have not all come
                yield text[len(written) :]
                written = text
        text = tokenizer.model.decode(ids)
        if len(text) > len(written):
            yield text[len(written) :]
    else:
        yield from tokens


TOKENIZERS = {CharacterTokenizer.name: CharacterTokenizer, WordTokenizer.name: WordTokenizer, BPETokenizer.name: None}


def make_tokenizer(name: str, directory: Path | None = None, file: str = BPE_FILE):
    """A tokenizer by name; `bpe` is read from `file` (tokenizer.json) in the given (run) directory."""
    if name not in TOKENIZERS:
        raise UsageError(f"unknown tokenizer {name!r}; known: {', '.join(TOKENIZERS)}")
    if name == BPETokenizer.name:
        if directory is None:
            raise UsageError("a BPE tokenizer is read from a run directory's tokenizer.json")
        return BPETokenizer.load(Path(directory) / file)
    return TOKENIZERS[name]()
