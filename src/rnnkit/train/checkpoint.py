"""Checkpoints as plain data: safetensors for tensors, JSON for the rest; nothing is pickled.

A checkpoint is a directory of three files (see rnnkit.rundir for the layout). It is written under a
temporary name, every file fsynced, renamed into place, and only then does `checkpoints/latest`
(replaced atomically) point at it; older checkpoints are deleted last. A kill at any moment
therefore leaves `latest` naming a complete checkpoint.

Capturing the state (weights, optimiser, random generators) only reads it: saving a checkpoint
changes nothing a later step computes, which is what makes a resumed run bit-identical.
"""
from __future__ import annotations

import json
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save

from rnnkit.atomic import fsync_directory, write_bytes_atomically, write_text_atomically
from rnnkit.errors import UsageError
from rnnkit.rundir import LATEST, MODEL_WEIGHTS, TRAINER_STATE, TRAINER_TENSORS, check_safetensors_file

FORMAT = "rnnkit-trainer-state"
TEMPORARY_PREFIX = ".tmp-"


def cpu_copies(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Independent contiguous CPU copies (tied weights become two equal tensors, as safetensors needs)."""
    return {name: tensor.detach().to("cpu", copy=True).contiguous() for name, tensor in tensors.items()}


def write_checkpoint(checkpoints: Path, step: int, model_tensors: dict, trainer_tensors: dict, trainer_state: dict) -> Path:
    """Write a complete checkpoint directory, point `latest` at it, delete the older ones."""
    checkpoints.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=checkpoints, prefix=TEMPORARY_PREFIX))
    write_bytes_atomically(temporary / MODEL_WEIGHTS, save(cpu_copies(model_tensors)))
    write_bytes_atomically(temporary / TRAINER_TENSORS, save(cpu_copies(trainer_tensors)))
    write_text_atomically(temporary / TRAINER_STATE, json.dumps({"format": FORMAT, "version": 1, **trainer_state}, indent=1))
    name, number = f"step-{step:08d}", 1
    while (checkpoints / name).exists():  # the same step saved twice: never touch the one `latest` names
        number += 1
        name = f"step-{step:08d}.{number}"
    temporary.rename(checkpoints / name)
    fsync_directory(checkpoints)
    write_text_atomically(checkpoints / LATEST, name + "\n")
    for entry in checkpoints.iterdir():
        if entry.is_dir() and entry.name != name:
            shutil.rmtree(entry, ignore_errors=True)
    return checkpoints / name


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    check_safetensors_file(path)
    try:
        return load_file(str(path))
    except Exception as error:  # safetensors reports every malformation with its own exception type
        raise UsageError(f"{path}: corrupt tensor file ({error})") from None


def read_checkpoint(directory: Path) -> tuple[dict, dict, dict]:
    """(model tensors, trainer tensors, trainer state) of a checkpoint directory."""
    model_tensors = read_tensors(directory / MODEL_WEIGHTS)
    trainer_tensors = read_tensors(directory / TRAINER_TENSORS)
    try:
        state = json.loads((directory / TRAINER_STATE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"{directory / TRAINER_STATE}: unreadable trainer state ({error})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UsageError(f"{directory / TRAINER_STATE}: not an rnnkit trainer state")
    return model_tensors, trainer_tensors, state


def flatten_optimizer_state(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """torch's optimiser state_dict as tensors named 'optimizer.<param index>.<name>' plus JSON."""
    tensors, scalars = {}, {}
    for index, values in state_dict["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], record: dict) -> dict:
    state: dict[int, dict] = {}
    for key, tensor in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = tensor
    for index, values in record["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    # JSON turned tuples (Adam's betas) into lists; torch expects them as it wrote them.
    groups = [{key: tuple(value) if isinstance(value, list) and key != "params" else value for key, value in group.items()}
              for group in record["param_groups"]]
    return {"state": state, "param_groups": groups}


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
        "numpy": {"kind": kind, "position": int(position), "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "python": {"version": version, "gauss_next": gauss_next},
    }
    return tensors, record


def restore_random_state(tensors: dict[str, torch.Tensor], record: dict) -> None:
    torch.set_rng_state(tensors["random.torch"])
    cuda_keys = sorted((key for key in tensors if key.startswith("random.cuda.")), key=lambda key: int(key.rsplit(".", 1)[1]))
    cuda_states = [tensors[key] for key in cuda_keys]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)
    numpy_record = record["numpy"]
    np.random.set_state((numpy_record["kind"], tensors["random.numpy"].numpy().astype(np.uint32), numpy_record["position"],
                         numpy_record["has_gauss"], numpy_record["cached_gaussian"]))
    python_record = record["python"]
    random.setstate((python_record["version"], tuple(int(value) for value in tensors["random.python"].tolist()),
                     python_record["gauss_next"]))
