"""How far back a loss at the last step reaches: ‖∂L_T/∂h_k‖ against the distance T - k for a vanilla
tanh RNN, an LSTM and a GRU of the same size, untrained and after a short character-LM training run.
The lecture (after Pascanu et al. 2013): a vanilla RNN's gradient shrinks exponentially when the
largest singular value of W_hh is below 1, and the LSTM's additive cell state keeps it alive.

Each model reads the same validation sequences; L_T is the cross-entropy of the token after the last
step. For the RNN the report sets the largest singular value of W_hh and of the step Jacobians
∂h_t/∂h_{t-1} beside the decay rate actually seen.

    rnnkit experiment gradient-flow [--corpus TEXT] [--steps 200] [--train-steps 1000] [--quick] [--out DIR]
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from rnnkit.errors import UsageError
from rnnkit.experiments import (
    QUICK_CHAR_MODEL,
    add_corpus_arguments,
    output_directory,
    quick_corpus,
    step_limit,
    train_once,
    write_report,
    write_results,
)
from rnnkit.plots import pyplot

NAME = "gradient-flow"
SUMMARY = "‖∂L_T/∂h_k‖ against distance for RNN, LSTM and GRU, untrained and trained"
CLAIM = (
    "Vanilla RNN gradients vanish exponentially with distance when the largest singular value of W_hh is "
    "below 1 (Pascanu et al. 2013); the LSTM's additive cell state keeps the gradient alive."
)
CELLS = {"RNN-tanh": ["model.cell=rnn"], "LSTM": ["model.cell=lstm"], "GRU": ["model.cell=gru"]}
THRESHOLD = 1e-6  # the relative gradient norm at which the report says a cell's gradient has vanished
BOUND_HOLDS = "below 1, so Pascanu et al.’s sufficient condition for vanishing holds"
BOUND_FAILS = "above 1, so the sufficient condition does not apply; the tanh derivative still shrinks each step"
PLOT_FLOOR = 1e-40  # float32 gradients underflow to 0 below about 1e-38; the plot draws 0 here
SEQUENCES = 8  # validation sequences the norms are averaged over


def add_arguments(parser) -> None:
    add_corpus_arguments(parser, NAME, "a small corpus and model, T = 12, 3 training steps")
    parser.add_argument("--steps", type=int, default=200, metavar="T", help="sequence length T (default 200)")
    parser.add_argument(
        "--train-steps", type=int, default=1000, metavar="N", help="training steps per cell (default 1000)"
    )


def run(args) -> int:
    if args.steps < 2:
        raise UsageError(f"--steps: the gradient flows over T >= 2 steps, got {args.steps}")
    if args.train_steps < 1:
        raise UsageError(f"--train-steps must be 1 or more, got {args.train_steps}")
    pyplot()
    directory = output_directory(args.out, NAME)
    corpus, steps, settings = args.corpus, args.steps, []
    limit = step_limit(args.train_steps)
    if args.quick:
        corpus, steps, settings = quick_corpus(args.corpus, directory / "data"), 12, list(QUICK_CHAR_MODEL)
        limit = step_limit(3)
    rows = []
    for name, cell in CELLS.items():
        outcome = train_once(
            "shakespeare-char", settings + cell, {"data.corpus": corpus, **limit}, directory / "runs" / name.lower()
        )
        row = {
            "cell": name,
            "parameters": outcome["parameters"],
            "validation_nll": outcome["best"],
            "seconds": outcome["seconds"],
            "steps": outcome["steps"],
            "run": outcome["run"],
        }
        for stage in ("untrained", "trained"):
            row[stage] = measure(outcome["run"], stage, steps, name == "RNN-tanh")
        rows.append(row)
        print(
            f"rnnkit experiment {NAME}: {name}: below {THRESHOLD:g} after "
            f"{row['untrained']['vanished_at'] or f'> {steps - 1}'} steps untrained, "
            f"{row['trained']['vanished_at'] or f'> {steps - 1}'} trained",
            file=sys.stderr,
            flush=True,
        )
    write_results(
        directory,
        {
            "experiment": NAME,
            "quick": args.quick,
            "T": steps,
            "threshold": THRESHOLD,
            "settings": settings,
            "limit": limit,
            "rows": rows,
        },
    )
    write_report(directory, report(rows, steps, limit, args.quick))
    plot(rows, directory / "gradient-flow.png")
    print(f"rnnkit experiment {NAME}: results.json, report.md and gradient-flow.png in {directory}", file=sys.stderr)
    return 0


def measure(run_path: str, stage: str, steps: int, vanilla: bool) -> dict:
    """The relative gradient norm at every distance 1..T-1 of the run's model: freshly initialised
    (`untrained`, seeded as the run was) or its best checkpoint (`trained`)."""
    import torch
    from torch.nn import functional as F

    from rnnkit.analysis import (
        gradient_flow,
        step_jacobian_singular_values,
        weight_singular_values,
    )
    from rnnkit.runs import open_run, seed_everything
    from rnnkit.tasks.language_model.data import validation_ids
    from rnnkit.tasks.language_model.torch import LanguageModel, load_run_model

    run = open_run(run_path)
    model, device, vocabulary = load_run_model(run)
    if stage == "untrained":
        seed_everything(run.config.train.seed)
        model = LanguageModel(len(vocabulary), run.config.model).to(device).eval()
    ids, _ = validation_ids(run.config, vocabulary)
    if len(ids) < steps + 1:
        raise UsageError(f"the validation text has {len(ids)} tokens; --steps {steps} needs {steps + 1}")
    starts = np.linspace(0, len(ids) - steps - 1, SEQUENCES).astype(int)
    sequences = torch.as_tensor(np.stack([ids[s : s + steps + 1] for s in starts]).T.astype(np.int64), device=device)
    x = model.embedding(sequences[:steps]).detach()  # (T, B, E)
    target = sequences[steps]  # the token h_T predicts

    def loss(h_last):
        return F.cross_entropy(model.decoder(h_last), target, reduction="sum")

    norms = gradient_flow(model.rnn, x, loss).flip(0).tolist()  # distance 1, 2, ..., T-1
    relative = [value / norms[0] if norms[0] > 0 else 0.0 for value in norms]
    result = {
        "relative_norm": relative,
        "vanished_at": next((d + 1 for d, value in enumerate(relative) if value < THRESHOLD), None),
        "per_step_factor": decay_factor(relative),
    }
    if vanilla:
        result["sigma_max_W_hh"] = weight_singular_values(model.rnn)["h"][0].item()
        jacobians = step_jacobian_singular_values(model.rnn, x[:, 0])
        result["sigma_max_step_jacobian_mean"] = jacobians[:, 0].mean().item()
    return result


def decay_factor(relative: list[float]) -> float | None:
    """The geometric mean per-step factor of the norm over the distances where it is above 1e-30 (a
    least-squares line through log norm against distance)."""
    points = [(d + 1, math.log(value)) for d, value in enumerate(relative) if value > 1e-30]
    if len(points) < 2:
        return None
    distances, logs = np.array(points).T
    return float(math.exp(np.polyfit(distances, logs, 1)[0]))


def describe_vanishing(value: int | None, steps: int) -> str:
    return str(value) if value is not None else f"> {steps - 1}"


def report(rows: list[dict], steps: int, limit: dict, quick: bool) -> str:
    budget = f"{limit['train.max_steps']} steps"
    lines = [
        "# Gradient flow through time: vanilla RNN, LSTM and GRU",
        "",
        f"**The lecture's claim.** {CLAIM}",
        "",
        f"**Our setup.** {'QUICK SMOKE VERSION: not a measurement. ' if quick else ''}Character LMs of the default "
        f"preset's size with each cell, trained for {budget} each. L_T is the cross-entropy of the token after step "
        f"T = {steps}, from {SEQUENCES} validation sequences; ‖∂L_T/∂h_k‖ is averaged over them and divided by its "
        f"value at distance 1. A cell's gradient has vanished where it drops below {THRESHOLD:g} of that.",
        "",
        "| cell | parameters | validation nll | vanished at (untrained) | vanished at (trained) "
        "| per-step factor (untrained / trained) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        factors = " / ".join(
            f"{row[s]['per_step_factor']:.3f}" if row[s]["per_step_factor"] else "n/a" for s in ("untrained", "trained")
        )
        lines.append(
            f"| {row['cell']} | {row['parameters']:,} | {row['validation_nll']:.3f} | "
            f"{describe_vanishing(row['untrained']['vanished_at'], steps)} | "
            f"{describe_vanishing(row['trained']['vanished_at'], steps)} | {factors} |"
        )
    rnn = next(row for row in rows if row["cell"] == "RNN-tanh")
    lines += [
        "",
        "The vanilla RNN's largest singular values beside its decay:",
        "",
        "| RNN-tanh | σ_max(W_hh) | mean σ_max(∂h_t/∂h_{t-1}) | per-step factor of the norm |",
        "|---|---:|---:|---:|",
    ]
    for stage in ("untrained", "trained"):
        values = rnn[stage]
        factor = f"{values['per_step_factor']:.3f}" if values["per_step_factor"] else "n/a"
        lines.append(
            f"| {stage} | {values['sigma_max_W_hh']:.3f} | {values['sigma_max_step_jacobian_mean']:.3f} | {factor} |"
        )
    lines += ["", f"**Agreement.** {agreement(rows, steps)}", "", "![gradient flow](gradient-flow.png)", ""]
    return "\n".join(lines)


def agreement(rows: list[dict], steps: int) -> str:
    by_cell = {row["cell"]: row["trained"] for row in rows}
    rnn, lstm = by_cell["RNN-tanh"], by_cell["LSTM"]
    untrained_rnn = next(row for row in rows if row["cell"] == "RNN-tanh")["untrained"]
    reach = {cell: values["vanished_at"] or steps for cell, values in by_cell.items()}
    lstm_longer = reach["LSTM"] > reach["RNN-tanh"]
    bound = rnn["sigma_max_W_hh"] < 1
    return (
        f"After training the RNN's gradient falls below {THRESHOLD:g} at distance "
        f"{describe_vanishing(rnn['vanished_at'], steps)}, the LSTM's at "
        f"{describe_vanishing(lstm['vanished_at'], steps)} "
        f"and the GRU's at {describe_vanishing(by_cell['GRU']['vanished_at'], steps)}: the LSTM's gradient "
        f"{'reaches further than' if lstm_longer else 'does not reach further than'} the RNN's. "
        f"The trained RNN's σ_max(W_hh) is {rnn['sigma_max_W_hh']:.3f} "
        f"({BOUND_HOLDS if bound else BOUND_FAILS}); "
        f"untrained it is {untrained_rnn['sigma_max_W_hh']:.3f}. "
        f"The claim {'holds' if lstm_longer else 'does not show'} here."
    )


def plot(rows: list[dict], path: Path) -> None:
    plt = pyplot()
    figure, panels = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axes, stage in zip(panels, ("untrained", "trained")):
        for row in rows:
            relative = row[stage]["relative_norm"]
            axes.semilogy(range(1, len(relative) + 1), [max(v, PLOT_FLOOR) for v in relative], label=row["cell"])
        axes.axhline(THRESHOLD, color="grey", linewidth=0.8, linestyle=":")
        axes.set_ylim(bottom=PLOT_FLOOR)
        axes.set_title(stage)
        axes.set_xlabel("distance T - k (steps)")
        axes.legend()
    panels[0].set_ylabel("‖∂L_T/∂h_k‖ / ‖∂L_T/∂h_{T-1}‖ (0 drawn at 1e-40)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
