import io

import pytest

from rnnkit.data.text import read_text, resolve_corpus
from rnnkit.errors import UsageError


def test_reads_utf8_and_counts_code_points(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("naïve €5\n", encoding="utf-8")
    assert read_text(path) == "naïve €5\n"
    assert len(read_text(path)) == 9  # multi-byte characters are one character each


def test_missing_file(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        read_text(tmp_path / "absent.txt")


def test_empty_file_states_the_minimum(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(UsageError, match="empty; at least 10 characters"):
        read_text(path, minimum_characters=10)


def test_too_short_states_the_minimum(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("abc")
    with pytest.raises(UsageError, match="too short, 3 characters; at least 10"):
        read_text(path, minimum_characters=10)


def test_invalid_utf8_names_the_byte_offset(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("café au lait".encode("latin-1"))
    with pytest.raises(UsageError, match="not valid UTF-8 at byte offset 3"):
        read_text(path)


def test_binary_data_is_refused(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"abc\x00\x01\x02")
    with pytest.raises(UsageError, match="binary data.*offset 3"):
        read_text(path)


def test_directory_is_not_a_corpus(tmp_path):
    with pytest.raises(UsageError, match="not a regular file"):
        read_text(tmp_path)


def test_packaged_corpus_ships_tinyshakespeare():
    text = read_text(resolve_corpus("tinyshakespeare"))
    assert len(text) == 1115394
    assert text.startswith("First Citizen:")


def test_an_existing_file_wins_over_a_packaged_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tinyshakespeare").write_text("mine")
    assert resolve_corpus("tinyshakespeare") == tmp_path / "tinyshakespeare"


def test_a_byte_order_mark_is_never_data(tmp_path):
    from rnnkit.data.labelled import read_examples
    from rnnkit.data.tagged import read_tagged
    from rnnkit.data.text import iter_lines, read_stdin, read_text

    labels = tmp_path / "labels.txt"
    labels.write_bytes("\ufeff1 a good film\n0 a bad one\n".encode())
    assert {example.label for example in read_examples(labels, "label", False, False)[0]} == {"0", "1"}
    assert read_text(labels).startswith("1 a good") and next(iter_lines(labels)).startswith("1 a good")
    conllu = tmp_path / "one.conllu"
    conllu.write_bytes("\ufeff# text = Hi\n1\tHi\t_\tINTJ\t_\t_\t_\t_\t_\t_\n\n".encode())
    assert read_tagged(conllu, "conllu", "upos")[0].tags == ["INTJ"]
    assert read_stdin(io.TextIOWrapper(io.BytesIO("\ufeffcafé\n".encode()))) == "café\n"


def test_standard_input_that_is_not_utf8_is_refused():
    from rnnkit.data.text import read_stdin

    with pytest.raises(UsageError, match=r"standard input, line 2: not valid UTF-8 \(byte 0xe9\)"):
        read_stdin(io.TextIOWrapper(io.BytesIO(b"fine\ncaf\xe9\n")))
