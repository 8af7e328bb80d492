import pytest

from rnnkit.data.corpus import load_evaluation_ids, load_language_corpus
from rnnkit.data.vocabulary import Vocabulary
from rnnkit.errors import UsageError


def test_split_and_vocabulary_cover_both_parts(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("a" * 90 + "z" * 10)
    corpus = load_language_corpus(str(path), "", 0.9, "char", 10, "test")
    assert corpus.vocabulary.tokens == ["a", "z"]
    assert len(corpus.train_ids) == 90 and len(corpus.validation_ids) == 10
    assert set(corpus.validation_ids.tolist()) == {1}


def test_separate_validation_file(tmp_path):
    (tmp_path / "train.txt").write_text("abcabc")
    (tmp_path / "valid.txt").write_text("cab")
    corpus = load_language_corpus(str(tmp_path / "train.txt"), str(tmp_path / "valid.txt"), 0.9, "char", 4, "test")
    assert len(corpus.train_ids) == 6 and corpus.vocabulary.decode_text(corpus.validation_ids) == "cab"


def test_too_short_corpus_states_minimum_and_reason(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("x" * 50)
    with pytest.raises(UsageError, match=r"too short, 50 characters; at least 73 are needed \(batch 4"):
        load_language_corpus(str(path), "", 0.9, "char", 65, "batch 4")


def test_saved_vocabulary_rejects_new_characters(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("abcd" * 30 + "Q")
    with pytest.raises(UsageError, match="corpus.txt: characters not in the vocabulary: 'Q'"):
        load_language_corpus(str(path), "", 0.9, "char", 10, "test", vocabulary=Vocabulary.from_text("abcd"))
    with pytest.raises(UsageError, match="'Q'"):
        load_evaluation_ids(str(path), Vocabulary.from_text("abcd"))
