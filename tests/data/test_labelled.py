"""The readers of labelled sentences: trees (SST), label-first lines, TSV; the word vocabulary;
batches of similar length."""

from collections import Counter

import numpy as np
import pytest

from rnnkit.data.batching import LengthBatches
from rnnkit.data.labelled import parse_tree, read_examples, tree_examples
from rnnkit.data.vocabulary import PAD, UNKNOWN, Vocabulary
from rnnkit.errors import UsageError

TREES = """(3 (2 (2 The) (2 film)) (4 (3 (2 is) (4 great)) (2 .)))
(1 (2 A) (0 (2 dull) (1 mess)))
(2 (2 It) (2 exists))
(3 (2 (2 8 1\\/2) (2 -LRB-sort-of-RRB-)) (3 (2 -LRB-) (3 fun) (2 -RRB-)))
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_tree_sentences_follow_the_sst2_rule(tmp_path):
    examples, held_out = read_examples(write(tmp_path, "trees.txt", TREES))
    assert [(" ".join(e.tokens), e.label) for e in examples] == [
        ("The film is great .", "1"),
        ("A dull mess", "0"),
        ("8 1/2 -LRB-sort-of-RRB- ( fun )", "1"),
    ]
    assert held_out == []


def test_phrases_are_every_non_neutral_node_once(tmp_path):
    examples, _ = read_examples(write(tmp_path, "trees.txt", TREES + "(4 (4 great))\n"), phrases=True, lowercase=True)
    phrases = {(" ".join(e.tokens), e.label) for e in examples}
    assert phrases == {
        ("the film is great .", "1"),
        ("is great .", "1"),
        ("is great", "1"),
        ("great", "1"),
        ("a dull mess", "0"),
        ("dull mess", "0"),
        ("mess", "0"),
        ("8 1/2 -lrb-sort-of-rrb- ( fun )", "1"),
        ("( fun )", "1"),
        ("fun", "1"),
    }
    assert len(examples) == len(phrases)  # "great" appears in two trees, once in the examples


def test_a_split_holds_out_whole_sentences(tmp_path):
    examples, held_out = read_examples(write(tmp_path, "trees.txt", TREES * 5), phrases=True, split_fraction=0.8)
    assert len(held_out) == 3 and all(e.tokens[-1] in (".", "mess", ")") for e in held_out)


@pytest.mark.parametrize(
    "text, message",
    [
        ("(3 (2 The) (2 film)\n", r"line 1: not a tree: expected '\)'"),
        ("(2 ok)\n(3 (x The))\n", "line 2: not a tree: expected a label 0-4"),
        ("(3 (2 a)) trailing\n", "text after the tree's closing"),
        ("(3 ())\n", "expected a label"),
    ],
)
def test_a_broken_tree_names_its_line(tmp_path, text, message):
    with pytest.raises(UsageError, match=message):
        read_examples(write(tmp_path, "trees.txt", text), "trees")


def test_label_first_and_tsv_lines(tmp_path):
    label_first = write(tmp_path, "a.txt", "1 a fine film\n\n0 bad .\n")
    tsv = write(tmp_path, "b.tsv", "a fine film\tpositive\nbad .\tnegative\n")
    assert [(e.tokens, e.label) for e in read_examples(label_first)[0]] == [
        (("a", "fine", "film"), "1"),
        (("bad", "."), "0"),
    ]
    assert [(e.tokens, e.label) for e in read_examples(tsv)[0]] == [
        (("a", "fine", "film"), "positive"),
        (("bad", "."), "negative"),
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("1 fine\n1\n", "line 2: expected a label, a space, a sentence, got '1'"),
        ("a fine film\tpos\nno tab here\n", "line 2: expected a sentence, a tab, a label"),
        ("fine\t\n", "line 1: expected a sentence, a tab, a label"),
        ("\n\n", "the file is empty|no labelled examples"),
        ("", "the file is empty"),
    ],
)
def test_a_line_without_label_or_an_empty_file(tmp_path, text, message):
    with pytest.raises(UsageError, match=message):
        read_examples(write(tmp_path, "x.txt", text))


def test_phrases_need_trees(tmp_path):
    with pytest.raises(UsageError, match="data.phrases needs a file of trees"):
        read_examples(write(tmp_path, "a.txt", "1 fine\n"), phrases=True)


def test_word_vocabulary_min_count_and_unknown():
    counts = Counter("the the the film film great".split())
    vocabulary = Vocabulary.from_counts(counts, "word", (PAD, UNKNOWN), min_count=2)
    assert vocabulary.tokens == [PAD, UNKNOWN, "the", "film"]
    assert vocabulary.encode(["the", "great", "zebra"]).tolist() == [2, 1, 1]
    assert Vocabulary.from_json(vocabulary.to_json()).encode(["zebra"]).tolist() == [1]
    assert Vocabulary.from_counts(counts, "word", (PAD, UNKNOWN), max_size=3).tokens == [PAD, UNKNOWN, "the"]
    with pytest.raises(UsageError, match="a word vocabulary holds words without spaces"):
        Vocabulary.from_json({**vocabulary.to_json(), "tokens": [PAD, UNKNOWN, "two words"]})


def test_length_batches_group_similar_lengths_and_restore_exactly():
    lengths = np.random.default_rng(0).integers(1, 60, 1000)
    reader = LengthBatches(lengths, 10, seed=3)
    first_epoch = [reader.next_batch() for _ in range(reader.batches_per_epoch)]
    assert sorted(np.concatenate(first_epoch).tolist()) == list(range(1000))  # every example once
    spread = np.mean([np.ptp(lengths[batch]) for batch in first_epoch])
    assert spread < 5  # similar lengths together (random batches would spread by ~50)
    for _ in range(7):
        reader.next_batch()
    position = reader.position()
    expected = [reader.next_batch().tolist() for _ in range(150)]
    restored = LengthBatches(lengths, 10, seed=3)
    restored.restore(position)
    assert [restored.next_batch().tolist() for _ in range(150)] == expected
    assert LengthBatches(lengths, 10, seed=4).next_batch().tolist() != first_epoch[0].tolist()


def test_a_tree_nested_thousands_deep_parses_without_recursion():
    depth = 5_000
    tree = parse_tree("(3 " * depth + "(4 good) (1 bad)" + ")" * depth, "deep")
    assert tree.leaves() == ["good", "bad"]
    assert sum(1 for _ in tree.nodes()) == depth + 2
    assert [example.tokens for example in tree_examples([tree], phrases=True)] == [("good", "bad"), ("good",), ("bad",)]
