"""The lectures' advice on multi-layer RNNs: 2-4 stacked layers help, deeper ones need skip
connections. Part-of-speech taggers with 1, 2, 3, 4 and 6 stacked bidirectional layers, each with and
without residual connections between layers, trained for the same number of epochs.

It runs on the tagger rather than the character LM: a tagger's dev accuracy responds to depth
within a few epochs on this CPU, and a stack whose gradients vanish shows it at once as accuracy
lost, while a char LM needs far longer training for depth to matter at all.

    rnnkit experiment depth --data TRAIN.conllu --val DEV.conllu [--epochs 2] [--seeds 1] [--first-seed 0]
        [--quick] [--out DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

from rnnkit.errors import UsageError
from rnnkit.experiments import (
    add_common_arguments,
    mean_and_sd,
    output_directory,
    subset,
    train_once,
    write_report,
    write_results,
)
from rnnkit.plots import pyplot

NAME = "depth"
SUMMARY = "taggers of 1 to 6 stacked layers, with and without residual connections"
CLAIM = "Multi-layer RNNs: 2-4 layers help; deeper networks need skip (residual) connections to train."
DEPTHS = (1, 2, 3, 4, 6)
SETTINGS = ["model.crf=false", "model.hidden_size=128"]
QUICK = {
    "train": 60,
    "dev": 20,
    "steps": 3,
    "depths": (1, 2, 6),
    "settings": [
        "model.embedding_size=16",
        "model.hidden_size=8",
        "model.char_embedding_size=8",
        "model.char_hidden_size=8",
    ],
}


def add_arguments(parser) -> None:
    add_common_arguments(
        parser,
        NAME,
        "tagged training data (CoNLL-U or tsv)",
        "tagged dev data",
        "a few sentences and steps, depths 1, 2, 6",
    )
    parser.add_argument("--epochs", type=float, default=2.0, metavar="N", help="training epochs per run (default 2)")
    parser.add_argument("--seeds", type=int, default=1, metavar="N", help="runs per configuration (default 1)")
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        metavar="S",
        help="the runs' seeds are S, S+1, ... (default 0); seeds run apart give the same runs as --seeds together",
    )


def run(args) -> int:
    if args.seeds < 1 or not args.epochs > 0:
        raise UsageError(f"--seeds must be 1 or more and --epochs positive, got {args.seeds} and {args.epochs:g}")
    if not 0 <= args.first_seed <= 2**31 - args.seeds:
        raise UsageError(f"--first-seed must be in [0, 2**31 - seeds], got {args.first_seed}")
    pyplot()
    directory = output_directory(args.out, NAME)
    files, settings, depths = {"train": args.data, "dev": args.val}, list(SETTINGS), DEPTHS
    limit = {"train.max_epochs": args.epochs}
    if args.quick:
        files = {
            "train": subset(args.data, QUICK["train"], directory / "data"),
            "dev": subset(args.val, QUICK["dev"], directory / "data"),
        }
        settings += QUICK["settings"]
        limit, depths = {"train.max_steps": QUICK["steps"], "train.eval_every": 3}, QUICK["depths"]
    runs = []
    for residual in (False, True):
        for depth in depths:
            for seed in range(args.first_seed, args.first_seed + (args.seeds if not args.quick else 1)):
                values = {
                    "data.train": files["train"],
                    "data.validation": files["dev"],
                    "train.seed": seed,
                    "model.num_layers": depth,
                    "model.residual": residual,
                    **limit,
                }
                outcome = train_once(
                    "ud-pos",
                    settings,
                    values,
                    directory / "runs" / f"layers{depth}-{'residual' if residual else 'plain'}-seed{seed}",
                )
                runs.append(
                    {
                        "layers": depth,
                        "residual": residual,
                        "seed": seed,
                        "dev_accuracy": outcome["best"],
                        **{k: outcome[k] for k in ("epochs", "seconds", "parameters", "run")},
                    }
                )
                print(
                    f"rnnkit experiment {NAME}: {depth} layers{', residual' if residual else ''}, seed {seed}: "
                    f"dev accuracy {100 * outcome['best']:.2f} ({outcome['seconds']:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    summary = []
    for residual in (False, True):
        for depth in depths:
            mine = [r for r in runs if r["layers"] == depth and r["residual"] == residual]
            mean, sd = mean_and_sd([100 * r["dev_accuracy"] for r in mine])
            summary.append(
                {
                    "layers": depth,
                    "residual": residual,
                    "dev_mean": round(mean, 2),
                    "dev_sd": round(sd, 2),
                    "seconds": round(sum(r["seconds"] for r in mine) / len(mine), 1),
                    "parameters": mine[0]["parameters"],
                }
            )
    write_results(
        directory,
        {
            "experiment": NAME,
            "quick": args.quick,
            "settings": settings,
            "limit": limit,
            "summary": summary,
            "runs": runs,
        },
    )
    write_report(directory, report(summary, args.quick, limit, args.seeds if not args.quick else 1))
    plot(summary, directory / "depth.png")
    print(f"rnnkit experiment {NAME}: results.json, report.md and depth.png in {directory}", file=sys.stderr)
    return 0


def agreement(summary: list[dict]) -> str:
    plain = {row["layers"]: row["dev_mean"] for row in summary if not row["residual"]}
    residual = {row["layers"]: row["dev_mean"] for row in summary if row["residual"]}
    best_plain = max(plain, key=plain.get)
    deepest = max(plain)
    middle = [depth for depth in plain if 2 <= depth <= 4]
    helps = any(plain[depth] > plain[1] for depth in middle)
    rescue = residual[deepest] - plain[deepest]
    return (
        f"Without skip connections the best depth is {best_plain} ({plain[best_plain]:.2f}); "
        f"{'some' if helps else 'none'} of 2-4 layers beat{'s' if not helps else ''} one layer "
        f"({plain[1]:.2f}), and {deepest} layers reach {plain[deepest]:.2f}. With residual connections "
        f"{deepest} layers reach {residual[deepest]:.2f} ({rescue:+.2f}). The lecture's advice "
        f"{'holds' if helps and rescue > 0 else 'holds only in part' if helps or rescue > 0 else 'does not show'} "
        "here, at this training budget."
    )


def report(summary: list[dict], quick: bool, limit: dict, seeds: int) -> str:
    budget = (
        f"{limit['train.max_epochs']:g} epochs" if "train.max_epochs" in limit else f"{limit['train.max_steps']} steps"
    )
    lines = [
        "# Depth of a stacked recurrent tagger, with and without residual connections",
        "",
        f"**The lecture's claim.** {CLAIM}",
        "",
        f"**Our setup.** {'QUICK SMOKE VERSION: not a measurement. ' if quick else ''}The ud-pos preset's tagger "
        f"(word embeddings and a character BiLSTM, bidirectional LSTM layers of 128 per direction, softmax output), "
        f"{budget} per run, {seeds} seed(s); residual connections add each layer's input to its output from the "
        "second layer on. Accuracy is the best checkpoint's on dev (UPOS). The tagger, not the char LM: its dev "
        "accuracy responds to depth within a few epochs on this CPU, where a char LM needs far longer for depth to "
        "matter.",
        "",
        "| layers | residual | dev accuracy | training seconds | parameters |",
        "|---:|---|---:|---:|---:|",
    ]
    for row in summary:
        spread = f" ± {row['dev_sd']:.2f}" if seeds > 1 else ""
        lines.append(
            f"| {row['layers']} | {'yes' if row['residual'] else 'no'} | {row['dev_mean']:.2f}{spread} | "
            f"{row['seconds']:.0f} | {row['parameters']:,} |"
        )
    lines += ["", f"**Agreement.** {agreement(summary)}", ""]
    return "\n".join(lines)


def plot(summary: list[dict], path: Path) -> None:
    plt = pyplot()
    figure, (accuracy, seconds) = plt.subplots(1, 2, figsize=(9, 4))
    for residual, style in ((False, "o-"), (True, "s--")):
        rows = [row for row in summary if row["residual"] == residual]
        label = "residual" if residual else "plain"
        accuracy.errorbar(
            [r["layers"] for r in rows],
            [r["dev_mean"] for r in rows],
            yerr=[r["dev_sd"] for r in rows],
            fmt=style,
            capsize=3,
            label=label,
        )
        seconds.plot([r["layers"] for r in rows], [r["seconds"] for r in rows], style, label=label)
    accuracy.set_xlabel("stacked layers")
    accuracy.set_ylabel("UPOS dev accuracy (%)")
    seconds.set_xlabel("stacked layers")
    seconds.set_ylabel("training seconds")
    for axes in (accuracy, seconds):
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
