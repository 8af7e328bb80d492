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

import sys
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
        """The words under the node, left to right (iteratively: a tree may be thousands deep)."""
        words, stack = [], [self]
        while stack:
            node = stack.pop()
            words.extend(node.words)
            stack.extend(reversed(node.children))
        return words

    def nodes(self):
        """Every node, parents before their children, left to right."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))


def parse_tree(text: str, where: str) -> Tree:
    """A PTB-bracketed tree, `(label child ...)` or `(label word)`; UsageError saying where it breaks.
    Parsed with an explicit stack of open nodes, so any depth reads in bounded stack space."""
    tokens = text.replace("(", " ( ").replace(")", " ) ").split()
    position = 0
    open_nodes: list[tuple[int, list[Tree]]] = []  # (label, children so far) of each node not yet closed

    def fail(problem: str):
        raise UsageError(f"{where}: not a tree: {problem} (at token {position + 1} of {len(tokens)})")

    def closing() -> None:
        nonlocal position
        if position >= len(tokens) or tokens[position] != ")":
            fail("expected ')'")
        position += 1

    while True:
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
            closing()
        elif position < len(tokens) and tokens[position] == "(":
            open_nodes.append((label, []))
            continue  # its first child
        else:
            fail("a node has neither a word nor children")
        while open_nodes:  # the finished node joins its parent, which closes unless a sibling follows
            open_nodes[-1][1].append(tree)
            if position < len(tokens) and tokens[position] == "(":
                break
            label, children = open_nodes.pop()
            closing()
            tree = Tree(label, tuple(children))
        else:
            break  # the root is finished
    if position != len(tokens):
        fail("text after the tree's closing ')'")
    return tree


def truncate_examples(examples: list[Example], max_length: int) -> tuple[list[Example], int]:
    """The examples with at most max_length words each (a longer one keeps its first words), and how many
    were longer: what keeps one huge line from taking a training step's memory past the batch's."""
    longer = sum(len(example.tokens) > max_length for example in examples)
    if not longer:
        return examples, 0
    return [Example(example.tokens[:max_length], example.label) for example in examples], longer


def check_columns(examples: int, labels: list[str], source: str, layout: str) -> None:
    """A label column with nearly as many distinct values as there are examples holds the text: say, in
    one line, that the columns look swapped (`layout` is what the format expects)."""
    if len(labels) > max(50, examples // 2):
        sample = next((label for label in labels if " " in label), labels[0])
        raise UsageError(
            f"{source}: {len(labels):,} distinct labels in {examples:,} examples (e.g. {sample[:40]!r}); the "
            f"columns look swapped: expected {layout}"
        )


def long_examples_record(count: int, max_length: int, action: str, unit: str = "words") -> dict:
    """What the start record says of the sentences longer than data.max_length (and, when there are any,
    one line on stderr saying what was done to them)."""
    if count:
        print(
            f"rnnkit: {count:,} training or validation sentences are longer than data.max_length = {max_length:,} "
            f"{unit}; they were {action}",
            file=sys.stderr,
        )
    return {"long_examples": {"count": count, "max_length": max_length, "action": action}}


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
        nodes = list(tree.nodes()) if phrases else [tree]
        words: dict[int, tuple[str, ...]] = {}  # each node's words, built from its children's (children first)
        for node in reversed(nodes) if phrases else ():
            words[id(node)] = node.words or tuple(word for child in node.children for word in words[id(child)])
        for node in nodes:
            label = binary_label(node.label)
            tokens = words[id(node)] if phrases else tuple(node.leaves())
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
