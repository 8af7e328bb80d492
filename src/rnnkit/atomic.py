"""Small files written so that a crash at any moment leaves either the old file or the new one,
whole, and read back with one-line errors.

The bytes go to a temporary file in the same directory, are flushed to disk (fsync), and the
temporary file is renamed over the target (os.replace is atomic within one file system); then the
directory itself is fsynced so the rename survives a power cut.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from rnnkit.errors import UsageError


def fsync_directory(directory: Path | str) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_bytes_atomically(path: Path | str, data: bytes) -> None:
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def write_text_atomically(path: Path | str, text: str) -> None:
    write_bytes_atomically(path, text.encode("utf-8"))


def read_json(path: Path | str, what: str) -> object:
    """A JSON file's content; UsageError naming the file and `what` it should be if it is unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"{path}: unreadable {what} ({error})") from None
