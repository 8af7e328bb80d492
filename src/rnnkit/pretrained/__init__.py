"""Models shipped inside the package, each a small run directory (config.json, vocabulary.json and one
checkpoint's model.safetensors) with a card, model.json, saying how it was made and how well it does.
Their names stand in for a run directory wherever a run is read:

    rnnkit sample shakespeare
    rnnkit eval shakespeare --engine numpy

A directory of the same name in the working directory wins over a shipped model.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from rnnkit.errors import UsageError

CARD = "model.json"


def shipped_directory() -> Path:
    return Path(str(resources.files("rnnkit") / "pretrained"))


def shipped_models() -> dict[str, Path]:
    """{name: directory} of every shipped model."""
    return {path.name: path for path in sorted(shipped_directory().iterdir()) if (path / CARD).is_file()}


def resolve_run_path(path: str | Path) -> Path:
    """A run directory: the path itself if it exists (or is not a shipped model's name), else the
    shipped model of that name."""
    path = Path(path)
    if path.exists() or len(path.parts) != 1:
        return path
    return shipped_models().get(path.name, path)


def card(name: str) -> dict:
    models = shipped_models()
    if name not in models:
        raise UsageError(f"no shipped model named {name!r}; shipped: {', '.join(models) or 'none'}")
    return json.loads((models[name] / CARD).read_text(encoding="utf-8"))
