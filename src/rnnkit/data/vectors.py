"""Pretrained word vectors from a text file: GloVe's format (`word v1 ... vD` a line) or word2vec's
text format (the same, after a header line `count D`). The file is read line by line and only the
vocabulary's words are kept, so a large file costs no more memory than the vocabulary."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnkit.data.vocabulary import Vocabulary
from rnnkit.errors import UsageError


def read_vectors(path: str | Path, vocabulary: Vocabulary, dimension: int) -> tuple[dict[int, np.ndarray], int]:
    """({token id: vector} for the vocabulary's words found in the file, how many lines were read)."""
    path = Path(path)
    found: dict[int, np.ndarray] = {}
    lines = 0
    try:
        with path.open(encoding="utf-8-sig") as file:  # a leading byte-order mark is not data
            for number, line in enumerate(file, 1):
                parts = line.rstrip("\n").rstrip(" ").split(" ")
                if number == 1 and len(parts) == 2 and all(part.isdigit() for part in parts):
                    continue  # word2vec's header: count and dimension
                if len(parts) < 2:
                    raise UsageError(
                        f"{path}, line {number}: expected a word and its vector, got {line.strip()[:60]!r}"
                    )
                if len(parts) - 1 != dimension:
                    raise UsageError(
                        f"{path}, line {number}: a vector of dimension {len(parts) - 1}, but "
                        f"model.embedding_size is {dimension}"
                    )
                lines += 1
                index = vocabulary.ids.get(parts[0])
                if index is None or index in found:
                    continue
                try:
                    vector = np.array(parts[1:], dtype=np.float32)
                except ValueError:
                    raise UsageError(f"{path}, line {number}: the vector of {parts[0]!r} is not all numbers") from None
                if not np.isfinite(vector).all():
                    raise UsageError(f"{path}, line {number}: the vector of {parts[0]!r} is not finite")
                found[index] = vector
    except FileNotFoundError:
        raise UsageError(f"{path}: no such vectors file") from None
    except UnicodeDecodeError as error:
        raise UsageError(f"{path}: not valid UTF-8 ({error.reason} at byte {error.start} of a line)") from None
    except OSError as error:
        raise UsageError(f"{path}: cannot read the vectors file ({error.strerror or error})") from None
    if lines == 0:
        raise UsageError(f"{path}: no vectors in the file")
    return found, lines
