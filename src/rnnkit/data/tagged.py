"""Tagged sentences for sequence tagging, in two formats:

- `conllu`: CoNLL-U, read with the `conllu` package. Multi-word-token ranges (`1-2`) and empty nodes
  (`8.1`) are skipped, the standard UD treatment for tagging syntactic words; the tag is the `upos`
  or `xpos` column. Every block keeps its original lines, so `rnnkit predict --conllu` can fill the
  tag column and leave every other byte as it was.
- `tsv`: one `token<TAB>tag` a line, a blank line between sentences (for prediction input, the tag
  column may be absent).

`auto` picks CoNLL-U for a `.conllu` file, or when the first line is a comment or a numbered token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import conllu

from rnnkit.data.text import read_text
from rnnkit.errors import UsageError

FORMATS = ("auto", "conllu", "tsv")
COLUMNS = ("upos", "xpos")
COLUMN_INDEX = {"upos": 3, "xpos": 4}  # 0-based columns of a CoNLL-U token line


@dataclass
class TaggedSentence:
    tokens: list[str]
    tags: list[str | None]  # None where the file gives no tag ("_" or no column)
    lines: list[str] = field(default_factory=list)  # CoNLL-U: the block's original lines
    first_line: int = 0  # the line number of the block's first line


def split_sentences(sentences: list[TaggedSentence], max_length: int) -> tuple[list[TaggedSentence], int]:
    """The sentences with a longer one cut into consecutive pieces of at most max_length tokens (every
    token keeps its tag), and how many were cut: for training and validation, where a piece is an
    example like any sentence."""
    longer = sum(len(sentence.tokens) > max_length for sentence in sentences)
    if not longer:
        return sentences, 0
    pieces = []
    for sentence in sentences:
        for start in range(0, len(sentence.tokens), max_length):
            pieces.append(
                TaggedSentence(
                    sentence.tokens[start : start + max_length],
                    sentence.tags[start : start + max_length],
                    first_line=sentence.first_line,
                )
            )
    return pieces, longer


def detect_format(path: Path, text: str) -> str:
    if path.suffix == ".conllu":
        return "conllu"
    first = next((line for line in text.splitlines() if line.strip()), "")
    return "conllu" if first.startswith("#") or first.split("\t", 1)[0].isdigit() else "tsv"


def blocks(text: str):
    """(first line number, lines) of each blank-line-separated block."""
    lines, start = [], 0
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            if not lines:
                start = number
            lines.append(line)
        elif lines:
            yield start, lines
            lines = []
    if lines:
        yield start, lines


def conllu_sentences(path: Path, text: str, column: str) -> list[TaggedSentence]:
    sentences = []
    for start, lines in blocks(text):
        try:
            parsed = conllu.parse("\n".join(lines) + "\n\n")
        except conllu.exceptions.ParseException as error:
            raise UsageError(f"{path}, lines {start}-{start + len(lines) - 1}: not CoNLL-U ({error})") from None
        words = [token for sentence in parsed for token in sentence if isinstance(token["id"], int)]
        if not words:
            raise UsageError(f"{path}, line {start}: a sentence with no tokens")
        tags = [None if token.get(column) in (None, "_") else token[column] for token in words]
        sentences.append(TaggedSentence([token["form"] for token in words], tags, lines, start))
    return sentences


def tsv_sentences(path: Path, text: str, require_tags: bool = True) -> list[TaggedSentence]:
    """Sentences of `token<TAB>tag` lines; without require_tags (prediction input) a line may be the token alone."""
    sentences = []
    for start, lines in blocks(text):
        tokens, tags = [], []
        for offset, line in enumerate(lines):
            token, tab, tag = line.partition("\t")
            if not token.strip() or (tab or require_tags) and not tag.strip():
                raise UsageError(f"{path}, line {start + offset}: expected a token, a tab and a tag, got {line[:60]!r}")
            tokens.append(token.strip())
            tags.append(tag.strip() or None)
        sentences.append(TaggedSentence(tokens, tags, lines, start))
    return sentences


def read_tagged(
    path: str | Path, format: str = "auto", column: str = "upos", require_tags: bool = True
) -> list[TaggedSentence]:
    """The sentences of a tagged file. With require_tags (training and evaluation), every token must
    have a tag; otherwise (prediction input) tags may be missing."""
    path = Path(path)
    text = read_text(path)
    format = detect_format(path, text) if format == "auto" else format
    sentences = conllu_sentences(path, text, column) if format == "conllu" else tsv_sentences(path, text, require_tags)
    if not sentences:
        raise UsageError(f"{path}: no sentences")
    if require_tags:
        untagged = [
            (sentence, index) for sentence in sentences for index, tag in enumerate(sentence.tags) if tag is None
        ]
        if len(untagged) == sum(len(sentence.tokens) for sentence in sentences):
            where = f"the {column} column" if format == "conllu" else "the tag column"
            raise UsageError(f"{path}: no tags: {where} is missing or '_' everywhere")
        if untagged:
            sentence, index = untagged[0]
            raise UsageError(
                f"{path}, sentence at line {sentence.first_line}: token {index + 1} "
                f"({sentence.tokens[index]!r}) has no tag"
            )
    return sentences
