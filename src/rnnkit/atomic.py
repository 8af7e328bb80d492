"""Small files written so that a crash at any moment leaves either the old file or the new one,
whole, and read back with one-line errors.

The bytes go to a temporary file in the same directory, are flushed to disk (fsync), and the
temporary file is renamed over the target (os.replace is atomic within one file system); then the
directory itself is fsynced so the rename survives a power cut. Files and directories get the
permissions the user's umask gives (tempfile's own are private). A failed write (disk full, a file
size limit) is one UsageError naming the file, and the old file stays as it was.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from rnnkit.errors import UsageError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _umask()  # read once: os.umask can only be read by setting it


def make_directory(path: Path | str, exist_ok: bool = False) -> None:
    os.makedirs(path, mode=0o777, exist_ok=exist_ok)  # the umask applies


def make_temporary_directory(parent: Path | str, prefix: str) -> Path:
    """A fresh directory in parent, with the umask's permissions (not tempfile's 0700)."""
    path = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    os.chmod(path, 0o777 & ~UMASK)
    return path


def write_failure(path: Path | str, error: OSError) -> UsageError:
    return UsageError(f"cannot write {path}: {error.strerror or error}")


def fsync_directory(directory: Path | str) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_bytes_atomically(path: Path | str, data: bytes) -> None:
    path = Path(path)
    try:
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise write_failure(path, error) from None
    try:
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), 0o666 & ~UMASK)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        fsync_directory(path.parent)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise write_failure(path, error) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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
