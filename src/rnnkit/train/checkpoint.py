"""Checkpoints as plain data: safetensors for tensors, JSON for the rest; nothing is pickled.

A checkpoint is a directory of three files (see rnnkit.rundir for the layout, and for the one reader
of its weights). It is written under a
temporary name, every file fsynced, renamed into place, and only then does `checkpoints/latest`
(replaced atomically) point at it; older checkpoints are pruned last. A kill at any moment
therefore leaves `latest` naming a complete checkpoint. Everything read back is checked (shapes,
finiteness, every field of trainer.json) before it is used.

Capturing the state (weights, optimiser, random generators) only reads it: saving a checkpoint
changes nothing a later step computes, which is what makes a resumed run bit-identical.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save

from rnnkit.atomic import (
    fsync_directory,
    make_directory,
    make_temporary_directory,
    write_bytes_atomically,
    write_failure,
    write_text_atomically,
)
from rnnkit.rundir import (
    CHECKPOINT_NAME,
    MODEL_WEIGHTS,
    TRAINER_STATE,
    TRAINER_STATE_FORMAT,
    TRAINER_TENSORS,
    read_model_weights,
    read_tensor_file,
    read_trainer_state,
)

TEMPORARY_PREFIX = ".tmp-"


def cpu_copies(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Independent contiguous CPU copies (tied weights become two equal tensors, as safetensors needs)."""
    return {name: tensor.detach().to("cpu", copy=True).contiguous() for name, tensor in tensors.items()}


def write_checkpoint(
    checkpoints: Path, step: int, model_tensors: dict, trainer_tensors: dict, trainer_state: dict
) -> str:
    """Write a complete checkpoint directory and return its name (`latest` is not touched here)."""
    try:
        make_directory(checkpoints, exist_ok=True)
        temporary = make_temporary_directory(checkpoints, TEMPORARY_PREFIX)
    except OSError as error:
        raise write_failure(checkpoints, error) from None
    try:
        write_bytes_atomically(temporary / MODEL_WEIGHTS, save(cpu_copies(model_tensors)))
        write_bytes_atomically(temporary / TRAINER_TENSORS, save(cpu_copies(trainer_tensors)))
        record = {"format": TRAINER_STATE_FORMAT, "version": 1, **trainer_state}
        write_text_atomically(temporary / TRAINER_STATE, json.dumps(record, indent=1, allow_nan=False))
        name, number = f"step-{step:08d}", 1
        while (checkpoints / name).exists():  # the same step saved twice: never touch the one `latest` names
            number += 1
            name = f"step-{step:08d}.{number}"
        temporary.rename(checkpoints / name)
        fsync_directory(checkpoints)
    except OSError as error:
        shutil.rmtree(temporary, ignore_errors=True)
        raise write_failure(temporary, error) from None
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return name


def point(checkpoints: Path, pointer: str, name: str) -> None:
    """Make `latest` or `best` name a checkpoint directory (atomically replaced)."""
    write_text_atomically(checkpoints / pointer, name + "\n")


def prune_checkpoints(checkpoints: Path, keep: set[str]) -> None:
    """Delete the checkpoint directories not in `keep`, and temporary ones a killed save left behind.
    Nothing else in the folder is touched."""
    for entry in checkpoints.iterdir():
        ours = CHECKPOINT_NAME.fullmatch(entry.name) or entry.name.startswith(TEMPORARY_PREFIX)
        if ours and entry.is_dir() and not entry.is_symlink() and entry.name not in keep:
            shutil.rmtree(entry, ignore_errors=True)


def read_checkpoint(directory: Path, expected: dict[str, tuple[int, ...]]) -> tuple[dict, dict, dict]:
    """(model tensors, checked against the expected names and shapes, trainer tensors, trainer state) of a
    checkpoint directory."""
    state = read_trainer_state(directory)
    model_tensors = read_model_weights(directory, expected, "pt")
    return model_tensors, read_tensor_file(directory / TRAINER_TENSORS, "pt"), state


def flatten_optimizer_state(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """torch's optimiser state_dict as tensors named 'optimizer.<param index>.<name>' plus JSON."""
    tensors, scalars = {}, {}
    for index, values in state_dict["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    extra = {key: value for key, value in state_dict.items() if key not in ("state", "param_groups")}
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars, **extra}


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], record: dict) -> dict:
    state: dict[int, dict] = {}
    for key, tensor in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = tensor
    for index, values in record["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    # JSON turned tuples (Adam's betas) into lists; torch expects them as it wrote them.
    groups = [
        {key: tuple(value) if isinstance(value, list) and key != "params" else value for key, value in group.items()}
        for group in record["param_groups"]
    ]
    extra = {key: value for key, value in record.items() if key not in ("param_groups", "scalars")}
    return {"state": state, "param_groups": groups, **extra}


def capture_random_state() -> tuple[dict[str, torch.Tensor], dict]:
    """Every random generator training may draw from: torch (CPU and CUDA), numpy, python."""
    tensors = {"random.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"random.cuda.{index}"] = state
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    tensors["random.numpy"] = torch.from_numpy(keys.astype(np.int64))
    version, internal, gauss_next = random.getstate()
    tensors["random.python"] = torch.tensor(internal, dtype=torch.int64)
    record = {
        "numpy": {
            "kind": kind,
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": {"version": version, "gauss_next": gauss_next},
    }
    return tensors, record


def seed_generators(*numbers: int) -> None:
    """Start torch's, numpy's and python's generators from a seed drawn from the numbers."""
    seed = int(np.random.SeedSequence(list(numbers)).generate_state(1, np.uint64)[0] % 2**63)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def restore_random_state(tensors: dict[str, torch.Tensor], record: dict) -> None:
    torch.set_rng_state(tensors["random.torch"])
    cuda_keys = sorted(
        (key for key in tensors if key.startswith("random.cuda.")), key=lambda key: int(key.rsplit(".", 1)[1])
    )
    cuda_states = [tensors[key] for key in cuda_keys]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)
    numpy_record = record["numpy"]
    np.random.set_state(
        (
            numpy_record["kind"],
            tensors["random.numpy"].numpy().astype(np.uint32),
            numpy_record["position"],
            numpy_record["has_gauss"],
            numpy_record["cached_gaussian"],
        )
    )
    python_record = record["python"]
    random.setstate(
        (
            python_record["version"],
            tuple(int(value) for value in tensors["random.python"].tolist()),
            python_record["gauss_next"],
        )
    )
