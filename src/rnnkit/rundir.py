"""The run directory: where `rnnkit train` writes and `sample`, `eval` and `--resume` read.

    RUN/
      config.json            the resolved configuration (every key, defaults included)
      vocabulary.json        the tokens, in id order, and the tokenizer
      metrics.jsonl          one JSON record per progress, evaluation, skip or rollback event
      samples.txt            samples written during training
      checkpoints/
        latest               the name of the newest complete checkpoint directory
        step-00001200/
          model.safetensors  the weights, under torch.nn's parameter names
          trainer.safetensors  optimiser tensors, RNG states, the carried hidden state
          trainer.json       step, data position, schedule, elapsed time, optimiser settings

A checkpoint directory is filled under a temporary name and renamed into place before `latest`
is atomically replaced to point at it, so a kill at any moment leaves `latest` naming a complete
checkpoint. This module needs neither torch nor numpy, except to read weights for the NumPy engine.
"""
from __future__ import annotations

import json
import struct
import time
from pathlib import Path

from rnnkit.errors import UsageError

CONFIG = "config.json"
VOCABULARY = "vocabulary.json"
METRICS = "metrics.jsonl"
SAMPLES = "samples.txt"
CHECKPOINTS = "checkpoints"
LATEST = "latest"
MODEL_WEIGHTS = "model.safetensors"
TRAINER_TENSORS = "trainer.safetensors"
TRAINER_STATE = "trainer.json"

PICKLE_MAGIC = b"\x80"  # protocol 2 and later start with PROTO (0x80) and the protocol number
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's archive format, which holds pickles
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on the JSON header


class RunDirectory:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def vocabulary_path(self) -> Path:
        return self.path / VOCABULARY

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def samples_path(self) -> Path:
        return self.path / SAMPLES

    @property
    def checkpoints_path(self) -> Path:
        return self.path / CHECKPOINTS

    @classmethod
    def existing(cls, path: Path | str) -> "RunDirectory":
        """A run directory that must already hold a run; UsageError otherwise."""
        run = cls(path)
        if not run.path.exists():
            raise UsageError(f"{run.path}: no such run directory")
        if not run.path.is_dir():
            raise UsageError(f"{run.path}: not a directory")
        if not run.config_path.is_file() or not run.vocabulary_path.is_file():
            raise UsageError(f"{run.path}: not an rnnkit run directory (no {CONFIG} or {VOCABULARY})")
        return run

    def latest_checkpoint(self) -> Path:
        """The directory of the newest complete checkpoint."""
        pointer = self.checkpoints_path / LATEST
        try:
            name = pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise UsageError(f"{self.path}: the run has no checkpoint yet") from None
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"{pointer}: unreadable ({error})") from None
        directory = self.checkpoints_path / name
        if not name or "/" in name or not directory.is_dir():
            raise UsageError(f"{pointer}: names {name!r}, which is not a checkpoint directory")
        return directory


def new_run_path(base: Path | str = "runs") -> Path:
    """A fresh directory name under base, from the current time."""
    base = Path(base)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate, number = base / stamp, 1
    while candidate.exists():
        number += 1
        candidate = base / f"{stamp}-{number}"
    return candidate


def looks_like_pickle(start: bytes) -> bool:
    return start.startswith(ZIP_MAGIC) or (start[:1] == PICKLE_MAGIC and start[1:2] in b"\x02\x03\x04\x05")


def check_safetensors_file(path: Path | str) -> None:
    """UsageError unless the file is a whole safetensors file; it is only inspected, never unpickled.

    Layout: 8 bytes little-endian header length N, N bytes of JSON starting with '{' (each tensor's
    data_offsets), then the data, which must end exactly where the largest offset says.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such weights file")
    size = path.stat().st_size
    with path.open("rb") as file:
        start = file.read(9)
        header_length = struct.unpack("<Q", start[:8])[0] if len(start) == 9 else -1
        if not (0 < header_length <= min(MAX_HEADER_BYTES, size - 8) and start[8:9] == b"{"):
            if looks_like_pickle(start):
                raise UsageError(f"{path}: this is a pickle (torch.save) file; rnnkit loads only safetensors, "
                                 "since loading a pickle can run code")
            raise UsageError(f"{path}: not a safetensors file, or truncated ({size} bytes)")
        file.seek(8)
        try:
            header = json.loads(file.read(header_length).decode("utf-8"))
            ends = [int(entry["data_offsets"][1]) for name, entry in header.items() if name != "__metadata__"]
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, TypeError, KeyError, IndexError, ValueError):
            raise UsageError(f"{path}: corrupt safetensors header") from None
    expected = 8 + header_length + max(ends, default=0)
    if size != expected:
        raise UsageError(f"{path}: truncated or corrupt weights file ({size} bytes, the header describes {expected})")


def load_numpy_weights(path: Path | str) -> dict:
    """Weights as NumPy arrays, read without torch."""
    from safetensors.numpy import load_file

    check_safetensors_file(path)
    try:
        return load_file(str(path))
    except Exception as error:  # safetensors reports every malformation with its own exception type
        raise UsageError(f"{path}: corrupt weights file ({error})") from None
