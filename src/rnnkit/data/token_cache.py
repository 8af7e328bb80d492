"""A corpus tokenised once: its token ids as a uint32 .npy file in a cache directory, read back as a
memory map, so that training reads a corpus of any size without holding it in memory.

The cache file is named by a digest of the corpus file's bytes and of the vocabulary (tokenizer and
tokens), so a changed corpus or vocabulary is tokenised anew. The cache directory is $RNNKIT_CACHE,
else ~/.cache/rnnkit; files are written under a temporary name and renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from rnnkit.atomic import make_directory, write_failure, write_text_atomically
from rnnkit.data.text import iter_lines
from rnnkit.data.vocabulary import Vocabulary, describe_tokens
from rnnkit.errors import UsageError

CACHE_VARIABLE = "RNNKIT_CACHE"
CHUNK_LINES = 4096  # lines tokenised before their ids are written out


READING = 2  # how files are read into tokens (2: a leading byte-order mark is dropped); part of every key


def cache_directory() -> Path:
    root = os.environ.get(CACHE_VARIABLE) or Path.home() / ".cache" / "rnnkit"
    return Path(root) / "tokens"


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        raise UsageError(f"{path}: cannot read the file ({error.strerror or error})") from None
    return digest.hexdigest()


def npy_header(count: int) -> bytes:
    header = {"descr": "<u4", "fortran_order": False, "shape": (count,)}
    text = repr(header).encode("latin1")
    padding = 64 - (10 + len(text) + 1) % 64
    return b"\x93NUMPY\x01\x00" + (len(text) + padding + 1).to_bytes(2, "little") + text + b" " * padding + b"\n"


def token_ids(path: str | Path, vocabulary: Vocabulary) -> tuple[np.ndarray, dict]:
    """(the file's token ids as a read-only uint32 memory map, {"tokens", "out_of_vocabulary"})."""
    path = Path(path)
    key = hashlib.sha256(f"{file_digest(path)}|{vocabulary.fingerprint()}|{READING}".encode()).hexdigest()[:32]
    target, index = cache_directory() / f"{key}.npy", cache_directory() / f"{key}.json"
    if target.exists() and index.exists():
        try:
            return np.load(target, mmap_mode="r"), json.loads(index.read_text())
        except (OSError, ValueError):
            pass  # a damaged cache entry is rebuilt
    return build(path, vocabulary, target, index)


def build(path: Path, vocabulary: Vocabulary, target: Path, index: Path) -> tuple[np.ndarray, dict]:
    try:
        make_directory(target.parent, exist_ok=True)
    except OSError as error:
        raise write_failure(target.parent, error) from None
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    count, unknown, missing = 0, 0, set()
    try:
        with temporary.open("wb") as file:
            file.write(npy_header(0))
            lines = []
            for line in iter_lines(path):
                lines.append(line)
                if len(lines) == CHUNK_LINES:
                    count, unknown = write_chunk(file, lines, vocabulary, count, unknown, missing)
                    lines = []
            count, unknown = write_chunk(file, lines, vocabulary, count, unknown, missing)
            if missing:
                raise UsageError(
                    f"{path}: {vocabulary.tokenizer.unit} not in the vocabulary: {describe_tokens(sorted(missing))}"
                )
            file.seek(0)
            header = npy_header(count)
            assert len(header) == len(npy_header(0))  # the placeholder had the same length
            file.write(header)
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise write_failure(target, error) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    record = {"tokens": count, "out_of_vocabulary": unknown, "source": str(path)}
    write_text_atomically(index, json.dumps(record) + "\n")
    return np.load(target, mmap_mode="r"), record


def write_chunk(file, lines: list[str], vocabulary: Vocabulary, count: int, unknown: int, missing: set):
    """Tokenise and write some lines' ids; OOV tokens are counted (or, with no <unk>, collected)."""
    tokens = vocabulary.tokenizer.split("".join(lines))
    if vocabulary.unknown_token is None:
        missing.update(token for token in set(tokens) if token not in vocabulary.ids)
        if missing:
            return count, unknown
    else:
        unknown += sum(token not in vocabulary.ids for token in tokens)
    file.write(vocabulary.encode(tokens).astype(np.uint32).tobytes())
    return count + len(tokens), unknown
