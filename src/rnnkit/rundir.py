"""The run directory: where `rnnkit train` writes and `sample`, `eval` and `--resume` read.

    RUN/
      config.json            the resolved configuration (every key, defaults included; `task` first)
      lock                   held (flock) by the one process training the run; it holds that process's id
      vocabulary.json        the task's own files: the tokens in id order, label sets, ...
      metrics.jsonl          one JSON record per progress, evaluation, checkpoint, skip or rollback event
      samples.txt            samples written during training (language models)
      checkpoints/
        latest               the name of the newest complete checkpoint directory
        best                 the name of the checkpoint with the best validation metric so far
        step-00001200/
          model.safetensors  the weights, under torch.nn's parameter names
          trainer.safetensors  optimiser tensors, RNG states, the carried hidden state
          trainer.json       step, data position, schedule, best metric, elapsed time, optimiser settings

A new run is assembled in a staging directory beside its final place (config, task files and the
first checkpoint) and renamed into place whole. A checkpoint directory is filled under a temporary
name and renamed into place before `latest` is atomically replaced to point at it, so a kill at any
moment leaves `latest` naming a complete checkpoint. The weights of a checkpoint are read here and
nowhere else (`read_model_weights`). This module imports neither torch nor numpy; reading weights
imports the one the caller asks for.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import math
import os
import re
import struct
import time
from pathlib import Path

from rnnkit.errors import UsageError

CONFIG = "config.json"
LOCK = "lock"
VOCABULARY = "vocabulary.json"
METRICS = "metrics.jsonl"
SAMPLES = "samples.txt"
CHECKPOINTS = "checkpoints"
LATEST = "latest"
BEST = "best"
MODEL_WEIGHTS = "model.safetensors"
TRAINER_TENSORS = "trainer.safetensors"
TRAINER_STATE = "trainer.json"
TRAINER_STATE_FORMAT = "rnnkit-trainer-state"
CHECKPOINT_NAME = re.compile(r"step-\d+(\.\d+)?")  # step-00001200, or step-00001200.2 for a second save

PICKLE_MAGIC = b"\x80"  # protocol 2 and later start with PROTO (0x80) and the protocol number
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's archive format, which holds pickles
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on the JSON header


def path_problem(path: Path, error: BaseException) -> str:
    """A one-line reason an operating-system call on a path failed."""
    if isinstance(error, OSError) and error.strerror:
        return f"{path}: {error.strerror}"
    return f"{path}: {error}"


class RunDirectory:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

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
        try:
            if not run.path.exists():
                raise UsageError(f"{run.path}: no such run directory")
            if not run.path.is_dir():
                raise UsageError(f"{run.path}: not a directory")
            if not run.config_path.is_file():
                raise UsageError(f"{run.path}: not an rnnkit run directory (no {CONFIG})")
        except OSError as error:
            raise UsageError(path_problem(run.path, error)) from None
        return run

    def pointed_checkpoint(self, pointer: str) -> Path | None:
        """The checkpoint directory that `latest` or `best` names, or None if there is no such pointer."""
        path = self.checkpoints_path / pointer
        try:
            name = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"{path}: unreadable ({error})") from None
        directory = self.checkpoints_path / name
        if not CHECKPOINT_NAME.fullmatch(name) or not directory.is_dir():
            raise UsageError(f"{path}: names {name!r}, which is not a checkpoint directory")
        return directory

    def latest_checkpoint(self) -> Path:
        """The directory of the newest complete checkpoint."""
        directory = self.pointed_checkpoint(LATEST)
        if directory is None:
            raise UsageError(
                f"{self.path}: the run has no checkpoint yet; start it with rnnkit train --resume {self.path}"
            )
        return directory

    def checkpoint(self, which: str | None = None) -> Path:
        """A checkpoint by name: 'latest', 'best', or a directory name such as 'step-00001200';
        None is 'best' when the run has one, else 'latest'."""
        if which is None:
            return self.pointed_checkpoint(BEST) or self.latest_checkpoint()
        if which == LATEST:
            return self.latest_checkpoint()
        if which == BEST:
            directory = self.pointed_checkpoint(BEST)
            if directory is None:
                raise UsageError(f"{self.path}: the run has no best checkpoint yet (it has not been validated)")
            return directory
        directory = self.checkpoints_path / which
        if not CHECKPOINT_NAME.fullmatch(which) or not directory.is_dir():
            kept = sorted(entry.name for entry in self.checkpoints_path.glob("step-*") if entry.is_dir())
            raise UsageError(
                f"--checkpoint {which!r}: expected latest, best or one of the kept checkpoints "
                f"({', '.join(kept) or 'none'})"
            )
        return directory

    def lock(self) -> "RunLock":
        return RunLock(self.path)


class RunLock:
    """The exclusive right to train a run directory: flock on RUN/lock, released by the operating
    system when the process ends however it ends. A second trainer fails at once, naming the holder."""

    def __init__(self, directory: Path) -> None:
        path = directory / LOCK
        try:
            self.descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise UsageError(f"cannot lock the run directory: {path_problem(path, error)}") from None
        try:
            fcntl.flock(self.descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.descriptor, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(self.descriptor)
            raise UsageError(
                f"{directory}: another rnnkit process (pid {holder}) is training this run; "
                "wait for it to finish or stop it"
            ) from None
        os.ftruncate(self.descriptor, 0)
        os.pwrite(self.descriptor, f"{os.getpid()}\n".encode("ascii"), 0)

    def release(self) -> None:
        if self.descriptor is not None:
            os.close(self.descriptor)  # closing the descriptor releases the flock
            self.descriptor = None


def process_running(pid: int) -> bool:
    """Whether a process of this machine still runs (one that has ended but is not yet reaped has not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as file:
            return file.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


TENSORBOARD = "tensorboard"  # train.tensorboard's event files
# every other file at a run's top level is its task's
RUN_RECORDS = (CONFIG, LOCK, METRICS, SAMPLES, CHECKPOINTS, TENSORBOARD)


def fingerprints(path: Path) -> dict[str, str]:
    """The SHA-256 of each of the task's own files at the top of a run directory (vocabulary, label sets,
    a BPE tokenizer): the files that give ids their meaning. Every checkpoint records them, and reading
    the checkpoint checks them."""
    return {
        entry.name: hashlib.sha256(entry.read_bytes()).hexdigest()
        for entry in sorted(Path(path).iterdir())
        if entry.name not in RUN_RECORDS and not entry.name.startswith(".") and entry.is_file()
    }


def enclosing_run(path: Path) -> Path | None:
    """The run directory that contains `path` (not `path` itself), if any."""
    for parent in path.parents:
        if (parent / CONFIG).is_file() and (parent / CHECKPOINTS).is_dir():
            return parent
    return None


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


_pinned: dict[Path, bytes] = {}  # the files of the checkpoints being read (pin_checkpoint), by path


@contextlib.contextmanager
def pin_checkpoint(checkpoint: Path):
    """Within the block, the checkpoint's weights and trainer state are read from a copy in memory taken
    on entry: a training process may replace and prune the checkpoint meanwhile, and the reader still
    sees it whole. (A checkpoint pruned before entry reads as missing; the caller resolves again.)"""
    files = {}
    for name in (MODEL_WEIGHTS, TRAINER_STATE):
        try:
            files[checkpoint / name] = (checkpoint / name).read_bytes()
        except FileNotFoundError:
            continue  # reported by the reader that needs it (a shipped model has no trainer state)
        except OSError as error:
            raise UsageError(path_problem(checkpoint / name, error)) from None
    _pinned.update(files)
    try:
        yield checkpoint
    finally:
        for path in files:
            _pinned.pop(path, None)


def check_safetensors_file(path: Path | str) -> None:
    """UsageError unless the file is a whole safetensors file; it is only inspected, never unpickled.

    Layout: 8 bytes little-endian header length N, N bytes of JSON starting with '{' (each tensor's
    data_offsets), then the data, which must end exactly where the largest offset says.
    """
    path = Path(path)
    pinned = _pinned.get(path)
    if pinned is None and not path.is_file():
        raise UsageError(f"{path}: no such weights file")
    size = len(pinned) if pinned is not None else path.stat().st_size
    with io.BytesIO(pinned) if pinned is not None else path.open("rb") as file:
        start = file.read(9)
        header_length = struct.unpack("<Q", start[:8])[0] if len(start) == 9 else -1
        if not (0 < header_length <= min(MAX_HEADER_BYTES, size - 8) and start[8:9] == b"{"):
            if looks_like_pickle(start):
                raise UsageError(
                    f"{path}: this is a pickle (torch.save) file; rnnkit loads only safetensors, "
                    "since loading a pickle can run code"
                )
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


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# trainer.json: each field, a test of its value, and what the value should be.
TRAINER_FIELDS = {
    "step": (_is_count, "an integer >= 0"),
    "tokens": (_is_count, "an integer >= 0"),
    "elapsed_seconds": (lambda v: _is_number(v) and v >= 0, "a finite number >= 0"),
    "lr_scale": (lambda v: _is_number(v) and v > 0, "a finite number > 0"),
    "rollbacks": (_is_count, "an integer >= 0"),
    "data_position": (lambda v: isinstance(v, dict), "a table"),
    "schedule": (
        lambda v: (
            isinstance(v, dict)
            and _is_number(v.get("plateau_factor"))
            and v["plateau_factor"] > 0
            and (v.get("best_loss") is None or _is_number(v.get("best_loss")))
            and _is_count(v.get("evaluations_without_improvement"))
        ),
        "a table of plateau_factor (> 0), best_loss and evaluations_without_improvement",
    ),
    "optimizer": (
        lambda v: (
            isinstance(v, dict) and isinstance(v.get("param_groups"), list) and isinstance(v.get("scalars"), dict)
        ),
        "a table of param_groups and scalars",
    ),
    "random": (
        lambda v: isinstance(v, dict) and isinstance(v.get("numpy"), dict) and isinstance(v.get("python"), dict),
        "a table of numpy and python generator states",
    ),
    "config": (lambda v: isinstance(v, dict), "a table"),
}
OPTIONAL_TRAINER_FIELDS = {  # absent from checkpoints written before best checkpoints existed
    "best": (
        lambda v: v is None or (isinstance(v, dict) and _is_number(v.get("value")) and _is_count(v.get("step"))),
        "null or a table of value and step",
    ),
    "evaluations_since_best": (_is_count, "an integer >= 0"),
    "files": (  # absent from checkpoints written before the task's files were fingerprinted
        lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(h, str) for k, h in v.items()),
        "a table of file names and their SHA-256",
    ),
    "world_size": (lambda v: _is_count(v) and v >= 1, "an integer >= 1"),  # the ranks that trained it (torchrun)
}


def read_trainer_state(directory: Path) -> dict:
    """A checkpoint's trainer.json, every field checked before anything uses it."""
    path = directory / TRAINER_STATE
    try:
        state = json.loads(_pinned[path].decode("utf-8") if path in _pinned else path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"{path}: unreadable trainer state ({error})") from None
    if not isinstance(state, dict) or state.get("format") != TRAINER_STATE_FORMAT:
        raise UsageError(f"{path}: not an rnnkit trainer state")
    for fields, required in ((TRAINER_FIELDS, True), (OPTIONAL_TRAINER_FIELDS, False)):
        for name, (valid, expected) in fields.items():
            if name not in state and not required:
                continue
            if name not in state:
                raise UsageError(f"{path}: the field {name!r} is missing")
            if not valid(state[name]):
                raise UsageError(f"{path}: {name} must be {expected}, got {json.dumps(state[name])[:80]}")
    return state


FRAMEWORKS = ("numpy", "pt")  # what a tensor file is read as: NumPy arrays, or torch tensors
SHOWN_PROBLEMS = 3  # how many mismatched tensors an error message names before "and N more"


def read_tensor_file(path: Path | str, framework: str = "numpy") -> dict:
    """A safetensors file's tensors as NumPy arrays (read without torch) or, with framework "pt", as
    torch tensors; checked whole first, never unpickled."""
    check_safetensors_file(path)
    pinned = _pinned.get(Path(path))
    try:
        if framework == "pt":
            from safetensors.torch import load, load_file
        else:
            from safetensors.numpy import load, load_file
        return load(pinned) if pinned is not None else load_file(str(path))
    except Exception as error:  # safetensors reports every malformation with its own exception type
        raise UsageError(f"{path}: corrupt tensor file ({error})") from None


def describe_problems(problems: list[str]) -> str:
    shown = "; ".join(problems[:SHOWN_PROBLEMS])
    return shown + (f"; and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else "")


def all_finite(value) -> bool:
    """Whether a NumPy array or torch tensor holds no NaN or infinity (integers always pass)."""
    if hasattr(value, "is_floating_point"):  # a torch tensor
        return not value.is_floating_point() or bool(value.isfinite().all())
    import numpy as np

    return not np.issubdtype(value.dtype, np.inexact) or bool(np.isfinite(value).all())


def check_weights(weights: dict, expected: dict[str, tuple[int, ...]], source) -> None:
    """UsageError naming the weights that are missing, unexpected, misshapen or not finite."""
    problems = [f"{name} is missing" for name in expected if name not in weights]
    problems += [f"{name} is not in the model" for name in weights if name not in expected]
    problems += [
        f"{name} has shape {tuple(weights[name].shape)}, the config makes {tuple(shape)}"
        for name, shape in expected.items()
        if name in weights and tuple(weights[name].shape) != tuple(shape)
    ]
    if problems:
        raise UsageError(f"{source}: the weights do not fit the run's config: {describe_problems(problems)}")
    bad = [name for name, value in weights.items() if not all_finite(value)]
    if bad:
        raise UsageError(f"{source}: non-finite weights in {describe_problems(bad)}")


def read_model_weights(checkpoint: Path, expected: dict[str, tuple[int, ...]], framework: str = "numpy") -> dict:
    """A checkpoint's model weights (model.safetensors), checked against the names and shapes the
    run's config makes: NumPy arrays for the NumPy engine, torch tensors (framework "pt") for torch.
    This is the one reader of model weights."""
    path = Path(checkpoint) / MODEL_WEIGHTS
    weights = read_tensor_file(path, framework)
    check_weights(weights, expected, path)
    return weights
