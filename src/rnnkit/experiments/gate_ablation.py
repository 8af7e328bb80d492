"""The LSTM deck's gate-ablation table: SST-2 accuracy of an LSTM sentence classifier for each set of
gates, from gateless to input, forget and output gates (EQUATIONS.md, "Cells and layers").

The deck's setup: SST binary sentences, 25-dimensional word vectors (here trained from random),
50-dimensional cell and hidden vectors, classification from the final hidden vector, AdaGrad,
10 epochs, mini-batch 10, early stopping on dev. Its forget gate also reads the previous cell
(a peephole); rnnkit's peephole=True gives every gate of the row a peephole, so the rows with a
forget gate have peepholes on all of their gates (the report lists them). Every run trains through
the normal run lifecycle; the early-stopped accuracy is that of the run's best checkpoint.

The deck trained on SST's labelled phrases (every non-neutral node of the training trees); with
--phrases so does this experiment (as the sst2 preset does), from the trees given as --data. Without
it, each run sees only the whole training sentences. Validation is on the dev sentences either way.

    rnnkit experiment gate-ablation --data TRAIN --val DEV [--phrases] [--epochs 10] [--test TEST] [--seeds 3]
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
from rnnkit.spec import CellSpec

NAME = "gate-ablation"
SUMMARY = "the LSTM deck's table: SST-2 accuracy per set of gates, gateless to input, forget and output"
# (row, gates, peephole, the deck's accuracy)
ROWS = [
    ("gateless", "", False, 80.6),
    ("output gates", "o", False, 81.9),
    ("input gates", "i", False, 84.4),
    ("input & output gates", "io", False, 84.6),
    ("forget gates", "f", True, 82.1),
    ("input & forget gates", "if", True, 84.1),
    ("forget & output gates", "fo", True, 82.6),
    ("input, forget, output gates", "ifo", True, 85.3),
]
SETTINGS = [  # the deck's setup as rnnkit settings (--set syntax)
    "task=classifier",
    "model.cell=lstm",
    "model.embedding_size=25",
    "model.hidden_size=50",
    "model.num_layers=1",
    "model.bidirectional=false",
    "model.pooling=last",
    "model.dropout=0.0",
    "data.lowercase=true",
    "optim.optimizer=adagrad",
    "optim.lr=0.05",
    "optim.clip=norm",
    "optim.clip_threshold=5.0",
    "train.batch_size=10",
    "train.max_epochs=10",
    "train.eval_every=173",
    "train.eval_batch_size=200",
]
QUICK = {"train_lines": 150, "dev_lines": 60, "epochs": 1, "seeds": 1}
QUICK_NOTE = "QUICK SMOKE VERSION (a few hundred sentences, 1 epoch): not a measurement. "


def add_arguments(parser) -> None:
    add_common_arguments(
        parser,
        NAME,
        "SST-2 training sentences: stsa.binary.train, the SST trees' train.txt, or a labelled file",
        "the dev sentences that early stopping watches",
        f"{QUICK['train_lines']} training and {QUICK['dev_lines']} dev lines, 1 epoch, 1 seed",
    )
    parser.add_argument("--test", metavar="TEST", help="also report the accuracy of each early-stopped model here")
    parser.add_argument("--seeds", type=int, default=3, metavar="N", help="runs per row, seeds 0..N-1 (default 3)")
    parser.add_argument(
        "--phrases",
        action="store_true",
        help="train on every labelled phrase of the SST trees given as --data, as the deck did (default: sentences)",
    )
    parser.add_argument(
        "--epochs", type=float, default=10.0, metavar="N", help="epochs per run (default 10, the deck's)"
    )


def train_row(row: tuple, seed: int, files: dict, epochs: float, phrases: bool, directory: Path) -> dict:
    """Train one row with one seed through the normal lifecycle; its early-stopped accuracies."""
    name, gates, peephole, _ = row
    values = {
        "data.train": files["train"],
        "data.validation": files["dev"],
        "train.seed": seed,
        "train.max_epochs": float(epochs),
        "model.gates": gates,
        "model.peephole": peephole,
        "data.phrases": phrases,
    }
    outcome = train_once(None, SETTINGS, values, directory / f"{gates or 'none'}-seed{seed}")
    record = {
        "row": name,
        "gates": gates,
        "peephole": peephole,
        "seed": seed,
        "dev_accuracy": outcome["best"],
        **{key: outcome[key] for key in ("best_step", "epochs", "seconds", "run")},
    }
    if files.get("test"):
        from rnnkit.runs import open_run

        run = open_run(outcome["run"])
        record["test_accuracy"] = run.task.evaluate(run, run.directory.checkpoint(), files["test"])["accuracy"]
    return record


def summarise(runs: list[dict]) -> list[dict]:
    summary = []
    for name, gates, peephole, deck in ROWS:
        mine = [run for run in runs if run["row"] == name]
        dev_mean, dev_sd = mean_and_sd([100 * run["dev_accuracy"] for run in mine])
        row = {
            "row": name,
            "gates": gates,
            "peepholes": peephole_letters(gates, peephole),
            "deck": deck,
            "dev_mean": round(dev_mean, 2),
            "dev_sd": round(dev_sd, 2),
            "runs": len(mine),
        }
        if all("test_accuracy" in run for run in mine):
            test_mean, test_sd = mean_and_sd([100 * run["test_accuracy"] for run in mine])
            row |= {"test_mean": round(test_mean, 2), "test_sd": round(test_sd, 2)}
        summary.append(row)
    return summary


def peephole_letters(gates: str, peephole: bool) -> str:
    return ", ".join(CellSpec("lstm", gates=gates, peephole=peephole).peephole_blocks) or "-"


def agreement(summary: list[dict]) -> str:
    """An honest sentence (or three) on where our ordering agrees with the deck's and where not."""
    pairs = [(a, b) for i, a in enumerate(summary) for b in summary[i + 1 :]]
    alike = sum((a["deck"] - b["deck"]) * (a["dev_mean"] - b["dev_mean"]) > 0 for a, b in pairs)
    tau = (2 * alike - len(pairs)) / len(pairs)
    ours = sorted(summary, key=lambda row: -row["dev_mean"])
    deck = sorted(summary, key=lambda row: -row["deck"])
    inverted = [
        f"{a['row']} vs {b['row']}"
        for a, b in pairs
        if (a["deck"] - b["deck"]) * (a["dev_mean"] - b["dev_mean"]) < 0
        and abs(a["dev_mean"] - b["dev_mean"]) > a["dev_sd"] + b["dev_sd"]
    ]
    spread = ours[0]["dev_mean"] - ours[-1]["dev_mean"]
    single = all(row["runs"] == 1 for row in summary)
    text = (
        f"{alike} of the {len(pairs)} pairs of rows are ordered as in the deck (Kendall's tau {tau:.2f}). "
        f"The deck's best row ({deck[0]['row']}) is {'also ours' if ours[0] is deck[0] else 'not ours'} "
        f"(ours: {ours[0]['row']}), and its worst ({deck[-1]['row']}) is "
        f"{'also ours' if ours[-1] is deck[-1] else 'not ours'} (ours: {ours[-1]['row']}). "
        f"Our rows span {spread:.1f} points where the deck's span {deck[0]['deck'] - deck[-1]['deck']:.1f}. "
    )
    if single:
        text += "With one run per row there is no spread to tell a reversal from noise."
    elif inverted:
        text += f"Pairs ordered against the deck by more than their standard deviations: {'; '.join(inverted)}."
    else:
        text += "No pair is ordered against the deck by more than the two rows' standard deviations."
    return text


def with_sd(mean: float, sd: float, seeds: int) -> str:
    return f"{mean:.1f} ± {sd:.1f}" if seeds > 1 else f"{mean:.1f}"


def report(summary: list[dict], runs: list[dict], seeds: int, epochs: float, phrases: bool, quick: bool) -> str:
    has_test = all("test_mean" in row for row in summary)
    lines = [
        "# Gate ablation: SST-2 accuracy per set of LSTM gates",
        "",
        "**The lecture's claim.** Building the LSTM gate by gate on binary sentiment classification (SST), "
        "accuracy rises from 80.6 for the gateless cell (c_t = c_{t-1} + g_t) to 85.3 with input, forget and "
        "output gates; input gates matter most.",
        "",
        f"**Our setup.** {QUICK_NOTE if quick else ''}"
        "The deck's: SST-2, 25-dimensional word vectors trained from random, 50-dimensional cell, "
        "classification from the final hidden vector, AdaGrad (lr 0.05), mini-batch 10, early stopping "
        f"on dev (the best of the evaluations every 173 steps). Trained on "
        f"{'every labelled phrase of the training trees' if phrases else 'the whole training sentences only'} "
        f"for {epochs:g} epochs{' (the deck: 10)' if epochs != 10 else ''}. {seeds} seed(s) per row. "
        "Rows with a forget gate "
        "use peephole=True, which in rnnkit gives every gate of the row a peephole (the deck's forget gate reads "
        "c_{t-1}); the peepholes column says which.",
        "",
        f"| row | gates | peepholes | deck | ours: dev accuracy{', mean ± sd' if seeds > 1 else ''} |"
        + (" ours: test |" if has_test else ""),
        "|---|---|---|---:|---:|" + ("---:|" if has_test else ""),
    ]
    for row in summary:
        line = (
            f"| {row['row']} | `{row['gates'] or '-'}` | {row['peepholes']} | {row['deck']:.1f} | "
            f"{with_sd(row['dev_mean'], row['dev_sd'], seeds)} |"
        )
        lines.append(line + (f" {with_sd(row['test_mean'], row['test_sd'], seeds)} |" if has_test else ""))
    seconds = sum(run["seconds"] for run in runs)
    lines += [
        "",
        f"**Agreement.** {agreement(summary)}",
        "",
        f"{len(runs)} runs, {seconds / 60:.1f} minutes of training. Every run is in results.json; "
        "the plot is gate-ablation.png.",
        "",
    ]
    return "\n".join(lines)


def plot(summary: list[dict], path: Path) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(9, 4.5))
    positions = range(len(summary))
    axes.bar(
        positions,
        [row["dev_mean"] for row in summary],
        yerr=[row["dev_sd"] for row in summary],
        capsize=4,
        color="#4c72b0",
        label="rnnkit, dev accuracy (mean ± sd)",
    )
    axes.scatter(positions, [row["deck"] for row in summary], color="#dd8452", zorder=3, label="the deck")
    axes.set_xticks(
        list(positions), [row["row"].replace(" gates", "").replace(", ", ",\n") for row in summary], fontsize=8
    )
    low = min(min(row["dev_mean"] - row["dev_sd"] for row in summary), min(row["deck"] for row in summary))
    axes.set_ylim(max(0, low - 3), 100 if low > 90 else max(row["deck"] for row in summary) + 5)
    axes.set_ylabel("SST-2 accuracy (%)")
    axes.set_title("LSTM gate ablation on SST-2")
    axes.legend(loc="best", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def run(args) -> int:
    if args.seeds < 1:
        raise UsageError(f"--seeds must be 1 or more, got {args.seeds}")
    if not 0 < args.epochs <= 1000:
        raise UsageError(f"--epochs must be in (0, 1000], got {args.epochs:g}")
    pyplot()  # before hours of training, not after
    directory = output_directory(args.out, NAME)
    files = {"train": args.data, "dev": args.val, "test": args.test}
    epochs, seeds = args.epochs, args.seeds
    if args.quick:
        files = {
            "train": subset(args.data, QUICK["train_lines"], directory / "data"),
            "dev": subset(args.val, QUICK["dev_lines"], directory / "data"),
            "test": subset(args.test, QUICK["dev_lines"], directory / "data") if args.test else None,
        }
        epochs, seeds = QUICK["epochs"], QUICK["seeds"]
    runs = []
    for row in ROWS:
        for seed in range(seeds):
            record = train_row(row, seed, files, epochs, args.phrases, directory / "runs")
            runs.append(record)
            print(
                f"rnnkit experiment {NAME}: {row[0]}, seed {seed}: dev accuracy {100 * record['dev_accuracy']:.1f} "
                f"({record['seconds']:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    summary = summarise(runs)
    write_results(
        directory,
        {
            "experiment": NAME,
            "quick": args.quick,
            "settings": SETTINGS,
            "epochs": epochs,
            "phrases": args.phrases,
            "files": files,
            "summary": summary,
            "runs": runs,
        },
    )
    write_report(directory, report(summary, runs, seeds, epochs, args.phrases, args.quick))
    plot(summary, directory / "gate-ablation.png")
    print(f"rnnkit experiment {NAME}: results.json, report.md and gate-ablation.png in {directory}", file=sys.stderr)
    return 0
