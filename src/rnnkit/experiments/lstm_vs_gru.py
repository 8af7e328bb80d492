"""The lecture's rule of thumb: a GRU has fewer parameters and trains faster, an LSTM is a good default.
Character LMs of the default preset with an LSTM, a GRU of the same hidden size and a GRU widened to
the LSTM's parameter count, each trained for the same wall time: parameters, training tokens per
second, and validation nll (at equal time, and at equal parameter count).

At the preset's learning rate (chosen for the LSTM) a GRU can turn unstable; --lr trains all three
models at another one.

    rnnkit experiment lstm-vs-gru [--corpus TEXT] [--train-seconds 300] [--lr LR] [--quick] [--out DIR]
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from rnnkit.config import MAX_LR
from rnnkit.errors import UsageError
from rnnkit.experiments import (
    QUICK_CHAR_MODEL,
    add_corpus_arguments,
    output_directory,
    quick_corpus,
    train_once,
    write_report,
    write_results,
)
from rnnkit.metrics_log import read_metrics
from rnnkit.plots import pyplot
from rnnkit.rundir import RunDirectory

NAME = "lstm-vs-gru"
SUMMARY = "LSTM against GRU char LMs: parameters, tokens/s, validation nll at equal time and equal size"
CLAIM = (
    "GRUs have fewer parameters and are faster to train; the LSTM is a good default (it tends to do as well or better)."
)
HIDDEN = 256  # the default preset's
QUICK = {"hidden": 16, "steps": 3}


def add_arguments(parser) -> None:
    add_corpus_arguments(parser, NAME, "a tiny model for 3 steps each")
    parser.add_argument(
        "--train-seconds", type=float, default=300.0, metavar="S", help="training seconds per model (default 300)"
    )
    parser.add_argument(
        "--lr", type=float, metavar="LR", help="the learning rate of all three models (default: the preset's)"
    )


def recurrent_parameters(gates: int, inputs: int, hidden: int, vocabulary: int) -> int:
    """A one-layer cell with `gates` blocks (LSTM 4, GRU 3) and two biases, and its output layer."""
    return gates * (hidden * (inputs + hidden) + 2 * hidden) + hidden * vocabulary + vocabulary


def matching_gru_size(hidden: int, inputs: int, vocabulary: int) -> int:
    """The GRU hidden size whose model is closest in size to an LSTM of `hidden` units."""
    target = recurrent_parameters(4, inputs, hidden, vocabulary)
    return min(
        range(hidden, 2 * hidden), key=lambda size: abs(recurrent_parameters(3, inputs, size, vocabulary) - target)
    )


def run(args) -> int:
    if not args.train_seconds > 0:
        raise UsageError(f"--train-seconds must be positive, got {args.train_seconds:g}")
    if args.lr is not None and not 0 < args.lr <= MAX_LR:
        raise UsageError(f"--lr must be in (0, {MAX_LR:g}], got {args.lr:g}")
    pyplot()
    directory = output_directory(args.out, NAME)
    corpus, settings, hidden, limit = (
        args.corpus,
        ["train.eval_every=250"],
        HIDDEN,
        {"train.max_time": args.train_seconds},
    )
    if args.quick:
        corpus, settings = quick_corpus(args.corpus, directory / "data"), QUICK_CHAR_MODEL + ["train.eval_every=1"]
        hidden, limit = QUICK["hidden"], {"train.max_steps": QUICK["steps"]}
    from rnnkit.data.text import read_text, resolve_corpus
    from rnnkit.runs import new_config

    vocabulary = len(set(read_text(resolve_corpus(corpus))))  # characters
    if args.lr is not None:
        settings.append(f"optim.lr={args.lr!r}")
    preset = new_config("shakespeare-char", settings, {})
    embedding, lr = preset.model.embedding_size, preset.optim.lr
    models = [
        ("LSTM", "lstm", hidden),
        ("GRU", "gru", hidden),
        ("GRU, LSTM-sized", "gru", matching_gru_size(hidden, embedding, vocabulary)),
    ]
    rows = []
    for label, cell, size in models:
        outcome = train_once(
            "shakespeare-char",
            settings + [f"model.cell={cell}", f"model.hidden_size={size}"],
            {"data.corpus": corpus, **limit},
            directory / "runs" / f"{cell}-{size}",
        )
        rows.append(
            {
                "model": label,
                "cell": cell,
                "hidden_size": size,
                "parameters": outcome["parameters"],
                "validation_nll": outcome["best"],
                "seconds": outcome["seconds"],
                "steps": outcome["steps"],
                "lr": lr,
                **from_metrics(Path(outcome["run"])),
                "run": outcome["run"],
            }
        )
        print(
            f"rnnkit experiment {NAME}: {label} ({size}): {outcome['parameters']:,} parameters, "
            f"{rows[-1]['tokens_per_second']:,.0f} tokens/s, validation nll {outcome['best']:.3f}",
            file=sys.stderr,
            flush=True,
        )
    write_results(
        directory, {"experiment": NAME, "quick": args.quick, "settings": settings, "limit": limit, "rows": rows}
    )
    write_report(directory, report(rows, limit, args.quick, lr))
    plot(rows, directory / "lstm-vs-gru.png")
    print(f"rnnkit experiment {NAME}: results.json, report.md and lstm-vs-gru.png in {directory}", file=sys.stderr)
    return 0


def from_metrics(run_path: Path) -> dict:
    """From the run's metrics.jsonl: the median training speed over its progress records (which leaves
    out setup and evaluation pauses) and (training seconds, validation nll) at each evaluation."""
    metrics = RunDirectory(run_path).metrics_path
    speeds = [record["tokens_per_second"] for record in read_metrics(metrics, "train")]
    return {
        "tokens_per_second": statistics.median(speeds) if speeds else 0.0,
        "curve": [[record["elapsed"], record["loss"]] for record in read_metrics(metrics, "eval")],
    }


def report(rows: list[dict], limit: dict, quick: bool, lr: float) -> str:
    budget = f"{limit['train.max_time']:g} s" if "train.max_time" in limit else f"{limit['train.max_steps']} steps"
    lines = [
        "# LSTM or GRU",
        "",
        f"**The lecture's claim.** {CLAIM}",
        "",
        f"**Our setup.** {'QUICK SMOKE VERSION: not a measurement. ' if quick else ''}"
        "The default preset's character LM "
        f"(embedding 64, one layer, window 64, batch 16, Adam at lr {lr:g} with a cosine schedule) with each cell, "
        f"{budget} of "
        "training each on the same machine; validation nll is the best checkpoint's, in nats per character, and the "
        "speed "
        "is the median of the run's progress records (evaluation pauses left out).",
        "",
        "| model | hidden size | parameters | training tokens/s | validation nll |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['hidden_size']} | {row['parameters']:,} | {row['tokens_per_second']:,.0f} | "
            f"{row['validation_nll']:.3f} |"
        )
    lines += ["", f"**Agreement.** {agreement(rows)}", "", "![LSTM against GRU](lstm-vs-gru.png)", ""]
    return "\n".join(lines)


def agreement(rows: list[dict]) -> str:
    lstm, gru, wide = rows
    smaller = gru["parameters"] < lstm["parameters"]
    faster = gru["tokens_per_second"] > lstm["tokens_per_second"]
    ratio = gru["tokens_per_second"] / lstm["tokens_per_second"] if lstm["tokens_per_second"] else float("nan")
    default_good = lstm["validation_nll"] <= min(gru["validation_nll"], wide["validation_nll"]) + 0.02
    return (
        f"The GRU of the same width has {gru['parameters'] / lstm['parameters']:.2f}× the LSTM's parameters and "
        f"trains at {ratio:.2f}× its tokens/s; at equal time it reaches {gru['validation_nll']:.3f} against the "
        f"LSTM's {lstm['validation_nll']:.3f}, and at equal size {wide['validation_nll']:.3f}. Fewer parameters: "
        f"{'yes' if smaller else 'no'}; faster: {'yes' if faster else 'no'}; the LSTM "
        + (
            "is within 0.02 nats of the best, a good default."
            if default_good
            else "trails the GRUs here by more than 0.02 nats."
        )
    )


def plot(rows: list[dict], path: Path) -> None:
    plt = pyplot()
    figure, (curves, speed) = plt.subplots(1, 2, figsize=(10, 4))
    for row in rows:
        if row["curve"]:
            seconds, nll = zip(*row["curve"])
            curves.plot(seconds, nll, "o-", markersize=3, label=f"{row['model']} ({row['parameters']:,} parameters)")
    curves.set_xlabel("training seconds")
    curves.set_ylabel("validation nll (nats per character)")
    curves.legend()
    speed.bar(
        [row["model"] for row in rows],
        [row["tokens_per_second"] for row in rows],
        color=["tab:blue", "tab:orange", "tab:green"],
    )
    speed.set_ylabel("training tokens per second")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
