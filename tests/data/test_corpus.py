"""Language-model corpora: vocabularies (characters, words with <unk>, BPE), splits, the token cache."""

import os

import numpy as np
import pytest

from rnnkit.data.corpus import build_vocabulary, load_evaluation_ids, load_language_corpus
from rnnkit.data.token_cache import cache_directory, token_ids
from rnnkit.data.tokenizers import EOS, WordTokenizer
from rnnkit.data.vocabulary import Vocabulary
from rnnkit.errors import UsageError


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_character_split_and_vocabulary_cover_both_parts(tmp_path):
    path = write(tmp_path, "corpus.txt", "a" * 90 + "z" * 10)
    vocabulary = build_vocabulary("char", str(path), "")
    corpus = load_language_corpus(str(path), "", 0.9, vocabulary, 10, "test")
    assert vocabulary.tokens == ["a", "z"]
    assert len(corpus.train_ids) == 90 and len(corpus.validation_ids) == 10
    assert set(np.asarray(corpus.validation_ids).tolist()) == {1}


def test_separate_validation_file(tmp_path):
    train, valid = write(tmp_path, "train.txt", "abcabc"), write(tmp_path, "valid.txt", "cab")
    vocabulary = build_vocabulary("char", str(train), str(valid))
    corpus = load_language_corpus(str(train), str(valid), 0.9, vocabulary, 4, "test")
    assert len(corpus.train_ids) == 6 and vocabulary.decode_text(corpus.validation_ids) == "cab"


def test_too_short_corpus_states_minimum_and_reason(tmp_path):
    path = write(tmp_path, "corpus.txt", "x" * 50)
    with pytest.raises(UsageError, match=r"too short, 50 characters; at least 73 are needed \(batch 4"):
        load_language_corpus(str(path), "", 0.9, build_vocabulary("char", str(path), ""), 65, "batch 4")


def test_saved_vocabulary_rejects_new_characters(tmp_path):
    path = write(tmp_path, "corpus.txt", "abcd" * 30 + "Q")
    with pytest.raises(UsageError, match="corpus.txt: characters not in the vocabulary: 'Q'"):
        load_language_corpus(str(path), "", 0.9, Vocabulary.from_text("abcd"), 10, "test")
    with pytest.raises(UsageError, match="'Q'"):
        load_evaluation_ids(str(path), Vocabulary.from_text("abcd"))


def test_words_end_lines_with_eos_and_keep_the_corpus_s_own_unk(tmp_path):
    assert WordTokenizer().split("the cat\n\nsat <unk>\nno break") == [
        "the",
        "cat",
        EOS,
        EOS,
        "sat",
        "<unk>",
        EOS,
        "no",
        "break",
    ]
    assert WordTokenizer().join(["the", "cat", EOS, "sat"]) == "the cat\nsat"
    train = write(tmp_path, "train.txt", "the cat sat\nthe <unk> sat\nthe dog\n")
    valid = write(tmp_path, "valid.txt", "the zebra sat\n")
    vocabulary = build_vocabulary("word", str(train), str(valid), min_count=2)
    assert vocabulary.tokens == ["<unk>", EOS, "the", "sat"] and vocabulary.unknown_token == "<unk>"
    corpus = load_language_corpus(str(train), str(valid), 0.9, vocabulary, 3, "test")
    assert vocabulary.decode(corpus.validation_ids) == ["the", "<unk>", "sat", EOS] and corpus.out_of_vocabulary == 1
    with pytest.raises(UsageError, match=r"the vocabulary would hold only <unk> \(data.min_count 9\)"):
        build_vocabulary("word", str(train), str(valid), min_count=9)
    with pytest.raises(UsageError, match="a word model needs a validation file"):
        build_vocabulary("word", str(train), "")


def test_bpe_learns_merges_and_round_trips_any_text(tmp_path):
    text = "".join(f"the {word} sat on the mat and the {word} ran\n" for word in ("cat", "dog", "rat", "bat") * 30)
    train, valid = write(tmp_path, "train.txt", text), write(tmp_path, "valid.txt", "the cat sat, naïvely!\n")
    vocabulary = build_vocabulary("bpe", str(train), str(valid), bpe_size=300)
    assert 256 < len(vocabulary) <= 300
    ids, record = token_ids(valid, vocabulary)
    assert (
        vocabulary.tokenizer.join(vocabulary.decode(ids)) == "the cat sat, naïvely!\n"
        and record["out_of_vocabulary"] == 0
    )
    with pytest.raises(UsageError, match="too little text to learn any BPE merge"):
        build_vocabulary("bpe", str(write(tmp_path, "tiny.txt", "a\n")), str(valid), bpe_size=300)


def test_the_token_cache_is_reused_and_rebuilt_when_the_corpus_changes(tmp_path):
    path = write(tmp_path, "corpus.txt", "abcab" * 20)
    vocabulary = Vocabulary.from_text("abc")
    first, _ = token_ids(path, vocabulary)
    cached = sorted(cache_directory().glob("*.npy"))
    assert isinstance(first, np.memmap) and first.dtype == np.uint32 and len(first) == 100
    modified = {entry: entry.stat().st_mtime_ns for entry in cached}
    again, _ = token_ids(path, vocabulary)
    assert np.array_equal(again, first) and {e: e.stat().st_mtime_ns for e in cached} == modified  # not rebuilt
    path.write_text("cba" * 10)
    changed, _ = token_ids(path, vocabulary)
    assert vocabulary.decode_text(changed) == "cba" * 10
    assert len(set(cache_directory().glob("*.npy"))) == len(cached) + 1
    assert os.environ["RNNKIT_CACHE"] in str(cache_directory())
