"""Package a trained character-LM run as a model shipped inside rnnkit (src/rnnkit/pretrained/NAME):
its config, vocabulary and best checkpoint's weights (no optimiser state), and a card (model.json)
with the command that made it, its training time and its validation nll on the whole validation text.

    python tools/ship_model.py RUN NAME --description TEXT --command "rnnkit train ..."

`make shipped-model` re-makes the shipped `shakespeare` model this way.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import fields
from pathlib import Path

from rnnkit.config import TrainConfig
from rnnkit.metrics_log import read_metrics
from rnnkit.rundir import BEST, CHECKPOINTS, CONFIG, LATEST, MODEL_WEIGHTS, VOCABULARY
from rnnkit.runs import open_run
from rnnkit.tasks.language_model import evaluate_run

TARGET = Path(__file__).resolve().parents[1] / "src" / "rnnkit" / "pretrained"
LIMIT_BYTES = 5_500_000  # "about 5 MB": small enough to ship inside the package


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run")
    parser.add_argument("name")
    parser.add_argument("--description", required=True)
    parser.add_argument("--command", required=True, help="the command that trained the run")
    args = parser.parse_args()
    run = open_run(args.run)
    if run.config.task != "language_model" or run.config.data.tokenizer != "char":
        sys.exit(f"{args.run}: expected a character language model run")
    checkpoint = run.directory.checkpoint()
    metrics = evaluate_run(run, checkpoint, None)
    end = read_metrics(run.directory.metrics_path, "end")[-1]
    target = TARGET / args.name
    shutil.rmtree(target, ignore_errors=True)
    (target / CHECKPOINTS / checkpoint.name).mkdir(parents=True)
    config = json.loads(run.directory.config_path.read_text())
    defaults = {field.name: field.default for field in fields(TrainConfig)}
    config["train"]["threads"] = defaults["threads"]  # sampling on the user's machine uses all its cores
    (target / CONFIG).write_text(json.dumps(config, indent=1) + "\n")
    shutil.copyfile(run.path / VOCABULARY, target / VOCABULARY)
    shutil.copyfile(checkpoint / MODEL_WEIGHTS, target / CHECKPOINTS / checkpoint.name / MODEL_WEIGHTS)
    for pointer in (BEST, LATEST):
        (target / CHECKPOINTS / pointer).write_text(checkpoint.name + "\n")
    parameters = read_metrics(run.directory.metrics_path, "start")[0]["parameters"]
    card = {
        "name": args.name,
        "description": args.description,
        "command": args.command,
        "training_seconds": round(end["elapsed"], 1),
        "steps": end["step"],
        "checkpoint": checkpoint.name,
        "parameters": parameters,
        "validation_nll": round(metrics["nll"], 4),
        "validation_bpc": round(metrics["bpc"], 4),
        "validation_tokens": metrics["tokens"],
    }
    (target / "model.json").write_text(json.dumps(card, indent=1) + "\n")
    size = sum(path.stat().st_size for path in target.rglob("*") if path.is_file())
    if size > LIMIT_BYTES:
        shutil.rmtree(target)
        sys.exit(f"{args.name}: {size:,} bytes is over the {LIMIT_BYTES:,}-byte limit for a shipped model")
    print(f"{target}: {size:,} bytes; validation nll {metrics['nll']:.4f} ({metrics['bpc']:.4f} bits per character)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
