"""Reading a text corpus: UTF-8 only, with errors that say what is wrong and where.

A corpus is either a path to a file or the name of a corpus shipped inside the package
(`tinyshakespeare`), so `rnnkit train` works on a fresh install with no data at hand.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

from rnnkit.errors import UsageError

PACKAGED_CORPORA = ("tinyshakespeare",)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def resolve_corpus(name_or_path: str) -> Path:
    """The file behind a corpus setting: an existing path wins over a packaged corpus of that name."""
    path = Path(name_or_path).expanduser()
    if name_or_path in PACKAGED_CORPORA and not path.exists():
        return Path(str(resources.files("rnnkit") / "corpora" / f"{name_or_path}.txt"))
    try:
        return path.resolve()
    except (OSError, RuntimeError) as error:  # a symlink loop, a name too long, ...
        raise UsageError(f"{path}: {getattr(error, 'strerror', None) or error}") from None


def with_absolute_paths(section, keys: tuple[str, ...], keep_corpus_names: bool = False):
    """A copy of a config section whose data-file keys hold absolute paths, so that the run can be
    resumed or evaluated from any directory; with keep_corpus_names, a packaged corpus's name stays a name."""
    values = {}
    for key in keys:
        value = getattr(section, key)
        if value and not (keep_corpus_names and value in PACKAGED_CORPORA and not Path(value).exists()):
            values[key] = str(resolve_corpus(value))
    return dataclasses.replace(section, **values)


def looks_like_utf16(data: bytes) -> bool:
    """A UTF-16 byte-order mark, or NUL bytes in every other position (ASCII text in UTF-16)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True
    sample = data[:4096]
    return len(sample) >= 4 and any(sample[offset::2].count(0) >= 0.9 * len(sample[offset::2]) for offset in (0, 1))


def check_regular_file(path: Path) -> None:
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    if not path.is_file():
        raise UsageError(f"{path}: not a regular file")


BOM = "\ufeff"  # a UTF-8 byte-order mark: some editors start a file with one; it is never data


def stdin_lines(stream):
    """The lines of standard input (each with its line break), checked as a file is: UTF-8 (a line that
    is not is an error naming it), a leading byte-order mark dropped. A text stream without bytes
    beneath (as tests give) is taken as it is."""
    raw = getattr(stream, "buffer", None)
    for number, line in enumerate(raw if raw is not None else stream, 1):
        if raw is not None:
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise UsageError(
                    f"standard input, line {number}: not valid UTF-8 (byte 0x{line[error.start]:02x}); "
                    "convert it to UTF-8"
                ) from None
        yield line.removeprefix(BOM) if number == 1 else line


def read_stdin(stream) -> str:
    """All of standard input, as `stdin_lines` checks it."""
    return "".join(stdin_lines(stream))


def check_text_start(path: Path, start: bytes) -> None:
    """UsageError if a file's first bytes show it is UTF-16 or binary."""
    if looks_like_utf16(start):
        raise UsageError(f"{path}: looks like UTF-16 text; convert it to UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)")


def iter_lines(path: Path | str):
    """The file's lines (each with its line break), read and checked as they come, so a corpus of
    any size costs the memory of one line: UTF-8, no NUL byte, not UTF-16."""
    path = Path(path)
    try:
        check_regular_file(path)
        with path.open("rb") as file:
            check_text_start(path, file.read(4096))
            file.seek(0)
            offset = 0
            for line in file:
                nul = line.find(b"\x00")
                if nul >= 0:
                    raise UsageError(
                        f"{path}: looks like binary data, not text (NUL byte at byte offset {offset + nul})"
                    )
                try:
                    yield line.decode("utf-8").removeprefix(BOM) if offset == 0 else line.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise UsageError(
                        f"{path}: not valid UTF-8 at byte offset {offset + error.start} "
                        f"(byte 0x{line[error.start]:02x}); convert the file to UTF-8"
                    ) from None
                offset += len(line)
    except OSError as error:
        raise UsageError(f"{path}: cannot read the file ({error.strerror or error})") from None


def read_text(path: Path | str, minimum_characters: int = 1) -> str:
    """The file's text; UsageError if missing, not UTF-8, binary, or shorter than the minimum."""
    path = Path(path)
    try:
        check_regular_file(path)
        data = path.read_bytes()
    except OSError as error:
        raise UsageError(f"{path}: cannot read the file ({error.strerror or error})") from None
    if not data and minimum_characters > 0:
        raise UsageError(f"{path}: the file is empty; at least {plural(minimum_characters, 'character')} are needed")
    check_text_start(path, data[:4096])
    nul = data.find(b"\x00")
    if nul >= 0:
        raise UsageError(f"{path}: looks like binary data, not text (NUL byte at byte offset {nul})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(
            f"{path}: not valid UTF-8 at byte offset {error.start} (byte 0x{data[error.start]:02x}); "
            "convert the file to UTF-8"
        ) from None
    text = text.removeprefix(BOM)
    if len(text) < minimum_characters:
        raise UsageError(
            f"{path}: too short, {plural(len(text), 'character')}; at least {minimum_characters} are needed"
        )
    return text
