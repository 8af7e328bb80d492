"""Labelled sentences for classification, in three formats:

- `label`: one example a line, the label, a space, the sentence (SST-2's stsa.binary.* files);
- `tsv`: one example a line, the sentence, a tab, the label (any user's data);
- `trees`: one PTB-bracketed sentiment tree a line, every node labelled 0-4 (the SST trees). The
  SST-2 rule applies: label > 2 is positive ("1"), < 2 negative ("0"), neutral (2) is dropped, so
  labels agree with the stsa files. With phrases, every labelled non-neutral node of every tree is an
  example (its leaves), de-duplicated by its words (the first label seen wins).

`auto` picks the format from the first line: a tree starts with "(", a tab means tsv, else label.
Tokens are whitespace-separated words. In the trees, -LRB- and -RRB- leaves become ( and ), the
escapes \\/ and \\* become / and *, and a leaf of several words (`(2 8 1\\/2)`) gives each of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rnnkit.data.text import read_text
from rnnkit.errors import UsageError

FORMATS = ("auto", "label", "tsv", "trees")
TREE_ESCAPES = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}


@dataclass(frozen=True)
class Example:
    tokens: tuple[str, ...]
    label: str


@dataclass(frozen=True)
class Tree:
    label: int
    children: tuple["Tree", ...] = ()
    words: tuple[str, ...] = ()  # a leaf's words

    def leaves(self) -> list[str]:
        return list(self.words) if self.words else [word for child in self.children for word in child.leaves()]

    def nodes(self):
        yield self
        for child in self.children:
            yield from child.nodes()


def parse_tree(text: str, where: str) -> Tree:
    """A PTB-bracketed tree, `(label child ...)` or `(label word)`; UsageError saying where it breaks."""
    tokens = text.replace("(", " ( ").replace(")", " ) ").split()
    position = 0

    def fail(problem: str):
        raise UsageError(f"{where}: not a tree: {problem} (at token {position + 1} of {len(tokens)})")

    def node() -> Tree:
        nonlocal position
        if position >= len(tokens) or tokens[position] != "(":
            fail("expected '('")
        position += 1
        if position >= len(tokens) or not tokens[position].isdigit() or not 0 <= int(tokens[position]) <= 4:
            fail("expected a label 0-4 after '('")
        label = int(tokens[position])
        position += 1
        if position < len(tokens) and tokens[position] not in "()":
            words = []
            while position < len(tokens) and tokens[position] not in "()":
                words.append(unescape(tokens[position]))
                position += 1
            tree = Tree(label, words=tuple(words))
        else:
            children = []
            while position < len(tokens) and tokens[position] == "(":
                children.append(node())
            if not children:
                fail("a node has neither a word nor children")
            tree = Tree(label, tuple(children))
        if position >= len(tokens) or tokens[position] != ")":
            fail("expected ')'")
        position += 1
        return tree

    tree = node()
    if position != len(tokens):
        fail("text after the tree's closing ')'")
    return tree


def unescape(word: str) -> str:
    return TREE_ESCAPES.get(word, word).replace("\\/", "/").replace("\\*", "*")


def binary_label(label: int) -> str | None:
    """SST-2: 0-1 negative ("0"), 3-4 positive ("1"), 2 neutral (None, dropped)."""
    return None if label == 2 else ("1" if label > 2 else "0")


def detect_format(path: Path, lines: list[str]) -> str:
    first = next((line for line in lines if line.strip()), "")
    if first.lstrip().startswith("("):
        return "trees"
    return "tsv" if "\t" in first else "label"


def read_trees(path: Path, lines: list[str]) -> list[Tree]:
    return [parse_tree(line, f"{path}, line {number}") for number, line in enumerate(lines, 1) if line.strip()]


def tree_examples(trees: list[Tree], phrases: bool) -> list[Example]:
    """Sentences (the roots) of the trees, or with phrases every node, under the SST-2 rule."""
    examples, seen = [], set()
    for tree in trees:
        for node in tree.nodes() if phrases else [tree]:
            label = binary_label(node.label)
            tokens = tuple(node.leaves())
            if label is not None and tokens not in seen:
                seen.add(tokens)
                examples.append(Example(tokens, label))
    return examples


def line_examples(path: Path, lines: list[str], format: str) -> list[Example]:
    examples = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if format == "tsv":
            text, separator, label = line.rpartition("\t")
        else:
            label, separator, text = line.strip().partition(" ")
        label = label.strip()
        if not separator or not label or not text.split():
            expected = "a sentence, a tab, a label" if format == "tsv" else "a label, a space, a sentence"
            raise UsageError(f"{path}, line {number}: expected {expected}, got {line.strip()[:60]!r}")
        examples.append(Example(tuple(text.split()), label))
    return examples


def read_examples(
    path: str | Path,
    format: str = "auto",
    phrases: bool = False,
    lowercase: bool = False,
    split_fraction: float | None = None,
) -> tuple[list[Example], list[Example]]:
    """(examples, held-out examples) of a labelled file. With split_fraction, the first fraction of
    its sentences (trees, lines) make the examples and the rest the held-out ones, always whole
    sentences; otherwise the held-out list is empty. Phrases come only from the examples' trees."""
    path = Path(path)
    lines = read_text(path).splitlines()
    format = detect_format(path, lines) if format == "auto" else format
    if phrases and format != "trees":
        raise UsageError(f"{path}: data.phrases needs a file of trees, and this one is in the {format} format")
    if format == "trees":
        trees = read_trees(path, lines)
        cut = int(len(trees) * split_fraction) if split_fraction else len(trees)
        examples, held_out = tree_examples(trees[:cut], phrases), tree_examples(trees[cut:], False)
    else:
        everything = line_examples(path, lines, format)
        cut = int(len(everything) * split_fraction) if split_fraction else len(everything)
        examples, held_out = everything[:cut], everything[cut:]
    if not examples:
        raise UsageError(f"{path}: no labelled examples (the {format} format; neutral trees are dropped)")
    if lowercase:
        examples, held_out = (
            [Example(tuple(token.lower() for token in example.tokens), example.label) for example in part]
            for part in (examples, held_out)
        )
    return examples, held_out
