"""Readable cells (Karpathy, Johnson and Fei-Fei 2015, "Visualizing and Understanding Recurrent
Networks"): some units of a character LSTM track quotes, line position or bracket depth. Every unit
of a trained char model is ranked by the correlation of its activation (c, tanh(c) or h) with
indicators computed from the text (rnnkit.analysis.cells); the best units are drawn over the text.

It reads the shipped `shakespeare` model by default (or --run DIR), and also trains a model on code:
rnnkit's own Python source as one text file, through the normal training path.

    rnnkit experiment interpretable-cells [--run DIR|NAME] [--code-steps 4000] [--quick] [--out DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from rnnkit.atomic import make_directory, write_text_atomically
from rnnkit.errors import UsageError
from rnnkit.experiments import (
    QUICK_CHAR_MODEL,
    add_output_arguments,
    output_directory,
    step_limit,
    train_once,
    write_report,
    write_results,
)
from rnnkit.plots import pyplot

NAME = "interpretable-cells"
SUMMARY = "rank a char model's units by correlation with quotes, brackets, line position, comments, indentation"
CLAIM = (
    "Some cells of a character LSTM become interpretable: a quote-detection cell, a line-length tracking cell, "
    "cells that track the depth of an expression or indentation (Karpathy et al. 2015). Their paper reports "
    "no correlation numbers; it shows the cells."
)
CHARACTERS = 20_000  # of the validation text, analysed
SHOWN = 1200  # characters drawn around the indicator's first event
TOP = 3


def add_arguments(parser) -> None:
    add_output_arguments(parser, NAME, "500 characters, the code model trained for 3 steps")
    parser.add_argument(
        "--run",
        default="shakespeare",
        metavar="DIR",
        help="a character LM run, or a shipped model's name (default: shakespeare)",
    )
    parser.add_argument(
        "--code-steps",
        type=int,
        default=4000,
        metavar="N",
        help="training steps of the model on rnnkit's source; 0 skips it (default 4000)",
    )


def code_corpus(directory: Path) -> str:
    """rnnkit's own Python source, file after file, as one text: a code corpus every install has."""
    import rnnkit

    root = Path(rnnkit.__file__).parent
    text = "".join(path.read_text(encoding="utf-8") + "\n" for path in sorted(root.rglob("*.py")))
    make_directory(directory, exist_ok=True)
    target = directory / "rnnkit-source.txt"
    write_text_atomically(target, text)
    return str(target)


def character_model_run(path: str):
    from rnnkit.runs import open_run

    run = open_run(path)
    if run.config.task != "language_model":
        raise UsageError(f"{path} is a {run.task.summary} run; interpretable-cells reads a character language model")
    if run.config.data.tokenizer != "char":
        raise UsageError(
            f"{path} reads {run.config.data.tokenizer} tokens; interpretable-cells needs a character model"
        )
    return run


def model_name(label: str, run: str) -> str:
    return "`shakespeare`, the model shipped with rnnkit" if label == "shipped" else run


def run(args) -> int:
    if args.code_steps < 0:
        raise UsageError(f"--code-steps must be 0 (skip) or more, got {args.code_steps}")
    models = [("shipped" if args.run == "shakespeare" else "given", character_model_run(args.run))]
    pyplot()
    directory = output_directory(args.out, NAME)
    characters = 500 if args.quick else CHARACTERS
    if args.code_steps:
        limit = step_limit(3 if args.quick else args.code_steps)
        outcome = train_once(
            "shakespeare-char",
            QUICK_CHAR_MODEL if args.quick else [],
            {"data.corpus": code_corpus(directory / "data"), **limit},
            directory / "runs" / "code",
        )
        models.append(("code", character_model_run(outcome["run"])))
    results = {}
    for label, run_opened in models:
        results[label] = analyse(run_opened, characters, directory, label)
        print(
            f"rnnkit experiment {NAME}: {label} model ({run_opened.path}): "
            + ", ".join(f"{name} r = {row['r']:+.2f}" for name, row in results[label]["best"].items()),
            file=sys.stderr,
            flush=True,
        )
    write_results(directory, {"experiment": NAME, "quick": args.quick, "characters": characters, "models": results})
    write_report(directory, report(results, args.quick))
    print(
        f"rnnkit experiment {NAME}: results.json, report.md, cells-*.html and cells-*.png in {directory}",
        file=sys.stderr,
    )
    return 0


def analyse(run, characters: int, directory: Path, label: str) -> dict:
    """Rank the run's units on its validation text; write cells-LABEL.html and cells-LABEL.png."""
    from rnnkit.analysis.cells import (
        coloured_html,
        indicators,
        rank_units,
        unit_signals,
    )
    from rnnkit.tasks.language_model.data import validation_ids
    from rnnkit.tasks.language_model.torch import load_run_model

    model, _, vocabulary = load_run_model(run)
    ids, _ = validation_ids(run.config, vocabulary)
    ids = ids[:characters]
    text = "".join(vocabulary.tokens[int(i)] for i in ids)
    signals, events = unit_signals(model, ids), indicators(text)
    ranking = rank_units(signals, events)
    best = {
        name: {"layer": units[0].layer, "unit": units[0].unit, "signal": units[0].signal, "r": units[0].r}
        for name, units in ranking.items()
    }
    top = {
        name: [{"layer": u.layer, "unit": u.unit, "signal": u.signal, "r": u.r} for u in units[:TOP]]
        for name, units in ranking.items()
    }
    pages = []
    for name, units in top.items():
        start = excerpt_start(events[name])
        for rank, unit in enumerate(units, 1):
            values = signals[f"{unit['layer']}.{unit['signal']}"][:, unit["unit"]]
            pages.append(
                coloured_html(
                    text[start : start + SHOWN],
                    values[start : start + SHOWN],
                    f"{name}: #{rank}, {unit['layer']} unit {unit['unit']} ({unit['signal']}), r = {unit['r']:+.3f}",
                )
            )
    write_text_atomically(directory / f"cells-{label}.html", page(label, run.path, pages))
    plot(text, events, signals, best, directory / f"cells-{label}.png", label)
    return {
        "run": str(run.path),
        "units": sum(v.shape[1] for k, v in signals.items() if k.endswith(".h")),
        "best": best,
        "top": top,
    }


def excerpt_start(indicator: np.ndarray) -> int:
    """A little before the indicator first changes, so the excerpt shows it at work."""
    changes = np.nonzero(np.diff(indicator))[0]
    return max(int(changes[0]) - 100, 0) if len(changes) else 0


def page(label: str, path: Path, blocks: list[str]) -> str:
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8"><title>rnnkit: readable cells of the '
        f"{label} model</title>\n<style>body{{font-family:sans-serif;max-width:70em;margin:auto}}"
        ".text{font-family:monospace;line-height:1.5;word-wrap:break-word}</style></head><body>\n"
        f"<h1>Readable cells of the {label} model</h1><p>{path}. Red is positive, blue negative; hover for the value."
        f"</p>\n{''.join(blocks)}</body></html>\n"
    )


def report(results: dict, quick: bool) -> str:
    names = list(next(iter(results.values()))["best"])
    for result in results.values():
        names += [name for name in result["best"] if name not in names]
    labels = list(results)
    lines = [
        "# Interpretable cells of character models",
        "",
        f"**The lecture's claim.** {CLAIM}",
        "",
        f"**Our setup.** {'QUICK SMOKE VERSION: not a measurement. ' if quick else ''}"
        "Every unit's c, tanh(c) and h over "
        "the first characters of each model's validation text, correlated (Pearson r) with each indicator; a unit "
        "scores its best signal. Models: "
        + "; ".join(
            f"{label}: {model_name(label, results[label]['run'])} ({results[label]['units']} units)" for label in labels
        )
        + ".",
        "",
        "| indicator | " + " | ".join(f"best r, {label} model" for label in labels) + " |",
        "|---|" + "---:|" * len(labels),
    ]
    for name in names:
        cells = []
        for label in labels:
            row = results[label]["best"].get(name)
            cells.append(f"{row['r']:+.3f} (unit {row['unit']}, {row['signal']})" if row else "n/a (not in the text)")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"**Agreement.** {agreement(results)}", ""]
    lines += [
        f"![{label}](cells-{label}.png)\n\nThe top {TOP} units per indicator over the text: [cells-{label}.html]"
        f"(cells-{label}.html)\n"
        for label in labels
    ]
    return "\n".join(lines)


def agreement(results: dict) -> str:
    found = []
    for label, result in results.items():
        strong = [f"{name} ({row['r']:+.2f})" for name, row in result["best"].items() if abs(row["r"]) >= 0.5]
        found.append(
            f"The {label} model has {len(strong)} indicator(s) with a unit at |r| ≥ 0.5"
            + (f": {', '.join(strong)}" if strong else "")
        )
    return (
        ". ".join(found) + ". Single units that follow an indicator closely are what the paper shows; a weak best "
        "r says that no one unit carries it (it may still be spread over many)."
    )


def layout(text: str, values: np.ndarray, columns: int, rows: int) -> tuple[list[list[str]], np.ndarray]:
    """Characters and their values on a grid of lines (a newline or the width breaks a line); NaN where empty."""
    grid, lines, line, row_values = np.full((rows, columns), np.nan), [], [], []
    for char, value in zip(text, values):
        line.append("↵" if char == "\n" else char)
        row_values.append(value)
        if char == "\n" or len(line) == columns:
            grid[len(lines), : len(row_values)] = row_values
            lines.append(line)
            line, row_values = [], []
            if len(lines) == rows:
                break
    if line and len(lines) < rows:
        grid[len(lines), : len(row_values)] = row_values
        lines.append(line)
    return lines, grid


def plot(text: str, events: dict, signals: dict, best: dict, path: Path, label: str) -> None:
    """One panel per indicator: an excerpt of the text, each character on its best unit's colour."""
    plt = pyplot()
    columns, rows = 80, 8
    figure, panels = plt.subplots(len(best), 1, figsize=(12, 1.9 * len(best)), squeeze=False)
    for axes, (name, row) in zip(panels[:, 0], best.items()):
        start = excerpt_start(events[name])
        values = signals[f"{row['layer']}.{row['signal']}"][start : start + columns * rows, row["unit"]]
        lines, grid = layout(text[start : start + columns * rows], values, columns, rows)
        scale = float(np.nanmax(np.abs(grid))) or 1.0
        axes.imshow(grid, cmap="bwr", vmin=-scale, vmax=scale, aspect="auto", interpolation="nearest")
        for y, line in enumerate(lines):
            for x, char in enumerate(line):
                dark = abs(grid[y, x]) > 0.6 * scale
                axes.text(
                    x,
                    y,
                    char,
                    ha="center",
                    va="center",
                    fontfamily="monospace",
                    fontsize=7,
                    color="white" if dark else "black",
                )
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_title(f"{name}: unit {row['unit']} ({row['signal']}), r = {row['r']:+.2f}", fontsize=9, loc="left")
    figure.suptitle(f"best unit per indicator, {label} model (red positive, blue negative)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
