import json

import numpy as np
import pytest

from rnnkit.data.vocabulary import Vocabulary
from rnnkit.errors import UsageError


def test_from_text_sorts_distinct_code_points():
    vocabulary = Vocabulary.from_text("baé€a")
    assert vocabulary.tokens == ["a", "b", "é", "€"]
    assert len(vocabulary) == 4


def test_encode_decode_round_trip():
    vocabulary = Vocabulary.from_text("hello, wörld")
    ids = vocabulary.encode_text("wörld, hello")
    assert ids.dtype == np.int64
    assert vocabulary.decode_text(ids) == "wörld, hello"


def test_unknown_tokens_are_named_once_each_in_order():
    vocabulary = Vocabulary.from_text("abc")
    with pytest.raises(UsageError) as raised:
        vocabulary.encode_text("axzxé")
    message = str(raised.value)
    assert "'x' (U+0078), 'z' (U+007A), 'é' (U+00E9)" in message
    assert message.count("'x'") == 1


def test_json_round_trip(tmp_path):
    vocabulary = Vocabulary.from_text("to be, or not\n")
    path = tmp_path / "vocabulary.json"
    vocabulary.save(path)
    loaded = Vocabulary.load(path)
    assert loaded.tokens == vocabulary.tokens
    assert loaded.tokenizer.name == "char"
    assert json.loads(path.read_text())["tokens"] == vocabulary.tokens


def test_corrupt_vocabulary_file(tmp_path):
    path = tmp_path / "vocabulary.json"
    path.write_text("{not json")
    with pytest.raises(UsageError, match="unreadable vocabulary"):
        Vocabulary.load(path)
    path.write_text(json.dumps({"tokens": ["a"]}))
    with pytest.raises(UsageError, match="not an rnnkit vocabulary"):
        Vocabulary.load(path)


def test_duplicate_tokens_are_refused():
    with pytest.raises(UsageError, match="duplicates"):
        Vocabulary(["a", "a"])


@pytest.mark.parametrize("tokenizer", [[], {"name": "char"}, 3, "bytes"])
def test_a_tokenizer_that_is_not_a_known_name_is_refused(tokenizer):
    with pytest.raises(UsageError, match="unknown tokenizer"):
        Vocabulary.from_json({"format": "rnnkit-vocabulary", "version": 1, "tokenizer": tokenizer, "tokens": ["a"]})
