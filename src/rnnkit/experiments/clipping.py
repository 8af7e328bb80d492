"""Why clipping the gradient norm tames exploding gradients, in two parts.

1. Pascanu et al. (2013)'s single-unit RNN x_t = w·σ(x_{t-1}) + b, x_0 = 0.5, with the loss
   (x_50 - 0.7)²: its surface over (w, b) has a wall, where x_0 sits on the boundary between the
   basins of two fixed points and x_50 jumps from one to the other. Near the wall the gradient is
   enormous, so a plain gradient-descent step that lands there throws the parameters far away;
   a clipped step keeps its length. Gradient descent from a row of starting points on the high
   side of the wall, with and without norm clipping, counts how often each is thrown.
2. A real character-level vanilla tanh RNN at a high learning rate, trained through the normal
   run lifecycle with and without clipping: the loss curves, and how often the divergence guard
   fired (skipped steps and rollbacks).

    rnnkit experiment clipping [--corpus TEXT] [--steps 1500] [--quick] [--out DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

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
from rnnkit.metrics_log import read_metrics
from rnnkit.plots import pyplot
from rnnkit.rundir import RunDirectory

NAME = "clipping"
SUMMARY = "Pascanu et al.'s loss cliff with and without norm clipping, then a char RNN at a high learning rate"
CLAIM = (
    "Exploding gradients come from walls in the loss surface; a step that hits one is thrown far away. "
    "Rescaling the gradient when its norm exceeds a threshold (Pascanu et al. 2013) keeps the step bounded."
)
T, X0, TARGET = 50, 0.5, 0.7  # Pascanu et al.'s single-unit model
W_RANGE, B_RANGE = (2.0, 14.0), (-9.0, 1.0)
LR, DESCENT_STEPS, THRESHOLD = (
    0.02,
    200,
    10.0,
)  # gradient descent on the single unit; 10 ≈ the gradients away from the wall
THROWN = 1.0  # a step longer than this (in (w, b)) counts as thrown; clipped steps are at most LR·THRESHOLD = 0.2
CHAR_RNN = [
    "model.cell=rnn",
    "optim.optimizer=sgd",
    "optim.lr=2.0",
    "optim.schedule=constant",
    "optim.warmup_steps=0",
    "optim.clip_threshold=1.0",
    "train.log_every=10",
]
QUICK = {"grid": 24, "starts": 6, "descent_steps": 20, "steps": 3}


def add_arguments(parser) -> None:
    add_corpus_arguments(parser, NAME, "a coarse surface, 6 starting points, a tiny char RNN for 3 steps")
    parser.add_argument(
        "--steps", type=int, default=1500, metavar="N", help="training steps of each char RNN (default 1500)"
    )


def single_unit_loss(parameters):
    """(x_T - 0.7)² for each (w, b) in parameters (..., 2), from x_0 = 0.5."""
    import torch  # here, not at the top: `rnnkit` lists the experiments without importing torch

    w, b = parameters[..., 0], parameters[..., 1]
    x = torch.full(w.shape, X0, dtype=parameters.dtype)
    for _ in range(T):
        x = w * torch.sigmoid(x) + b
    return (x - TARGET) ** 2


def starting_points(count: int):
    """Points on the high side of the wall: x_0 = 0.5 is the unstable fixed point where
    b = 0.5 - w·σ(0.5); each start lies 0.1 to 1.0 below that line."""
    import torch

    points = [
        [w, X0 - w * torch.sigmoid(torch.tensor(X0)).item() - offset]
        for w in torch.linspace(5.0, 12.0, count).tolist()
        for offset in (0.1, 0.3, 0.6, 1.0)
    ]
    return torch.tensor(points, dtype=torch.float64)


def descend(starts, steps: int, threshold: float | None) -> dict:
    """Gradient descent from every start at once, each with its own (optionally clipped) gradient."""
    import torch

    parameters = starts.clone().requires_grad_(True)
    path, longest, highest = [starts.clone()], torch.zeros(len(starts), dtype=torch.float64), single_unit_loss(starts)
    largest_gradient = torch.zeros(len(starts), dtype=torch.float64)
    for _ in range(steps):
        loss = single_unit_loss(parameters)
        highest = torch.maximum(highest, loss.detach())
        (gradient,) = torch.autograd.grad(loss.sum(), parameters)
        norm = gradient.norm(dim=1, keepdim=True)
        largest_gradient = torch.maximum(largest_gradient, norm[:, 0])
        if threshold is not None:
            gradient = torch.where(norm > threshold, gradient * threshold / norm, gradient)
        with torch.no_grad():
            step = LR * gradient
            parameters -= step
        longest = torch.maximum(longest, step.norm(dim=1))
        path.append(parameters.detach().clone())
    final = single_unit_loss(parameters.detach())
    start = single_unit_loss(starts)
    return {
        "path": torch.stack(path),
        "thrown": (longest > THROWN),
        "spiked": highest > 2 * start,
        "final": final,
        "largest_gradient": largest_gradient,
    }


def summarise(result: dict) -> dict:
    return {
        "thrown_fraction": result["thrown"].double().mean().item(),
        "spiked_fraction": result["spiked"].double().mean().item(),
        "median_final_loss": result["final"].median().item(),
        "largest_gradient": result["largest_gradient"].max().item(),
    }


def run(args) -> int:
    from rnnkit.train.trainer import TrainingDiverged

    if args.steps < 1:
        raise UsageError(f"--steps must be 1 or more, got {args.steps}")
    pyplot()
    directory = output_directory(args.out, NAME)
    grid, starts, descent_steps = 300, 29, DESCENT_STEPS
    corpus, settings, limit = args.corpus, list(CHAR_RNN), step_limit(args.steps)
    if args.quick:
        grid, starts, descent_steps = QUICK["grid"], QUICK["starts"], QUICK["descent_steps"]
        corpus, settings = quick_corpus(args.corpus, directory / "data"), settings + QUICK_CHAR_MODEL
        limit = step_limit(QUICK["steps"])
    points = starting_points(starts)
    plain, clipped = descend(points, descent_steps, None), descend(points, descent_steps, THRESHOLD)
    single = {
        "plain": summarise(plain),
        "clipped": summarise(clipped),
        "starts": len(points),
        "lr": LR,
        "steps": descent_steps,
        "threshold": THRESHOLD,
    }
    print(
        f"rnnkit experiment {NAME}: single unit: thrown {100 * single['plain']['thrown_fraction']:.0f}% of "
        f"{len(points)} starts without clipping, {100 * single['clipped']['thrown_fraction']:.0f}% with",
        file=sys.stderr,
        flush=True,
    )
    runs = []
    for clip in ("none", "norm"):
        run_directory = directory / "runs" / f"char-rnn-clip-{clip}"
        diverged = None
        try:
            outcome = train_once(
                "shakespeare-char", settings + [f"optim.clip={clip}"], {"data.corpus": corpus, **limit}, run_directory
            )
        except TrainingDiverged as error:  # the guard gave up: rolled back max_rollbacks times, still non-finite
            outcome, diverged = {"best": None, "steps": None, "seconds": None, "run": str(run_directory)}, str(error)
        runs.append(
            {
                "clip": clip,
                "validation_nll": outcome["best"],
                "diverged": diverged,
                **guard_record(run_directory),
                **{k: outcome[k] for k in ("steps", "seconds", "run")},
            }
        )
        print(
            f"rnnkit experiment {NAME}: char RNN, clip {clip}: validation nll {describe(runs[-1]['validation_nll'])}, "
            f"{runs[-1]['skipped']} skipped steps, {runs[-1]['rollbacks']} rollbacks",
            file=sys.stderr,
            flush=True,
        )
    write_results(
        directory,
        {
            "experiment": NAME,
            "quick": args.quick,
            "single_unit": single,
            "char_rnn": {
                "settings": settings,
                "limit": limit,
                "runs": [{k: v for k, v in r.items() if k != "curve"} for r in runs],
            },
            "curves": {r["clip"]: r["curve"] for r in runs},
        },
    )
    write_report(directory, report(single, runs, settings, limit, args.quick))
    plot_surface(grid, points, plain, clipped, directory / "clipping-surface.png")
    plot_training(runs, directory / "clipping-char-rnn.png")
    print(
        f"rnnkit experiment {NAME}: results.json, report.md, clipping-surface.png and clipping-char-rnn.png in "
        f"{directory}",
        file=sys.stderr,
    )
    return 0


def guard_record(run_directory: Path) -> dict:
    """From the run's metrics.jsonl: its training-loss curve and how often the divergence guard fired."""
    curve, skipped, rollbacks = [], 0, 0
    for record in read_metrics(RunDirectory(run_directory).metrics_path):
        if record["event"] == "train":
            curve.append([record["step"], record["loss"]])
        skipped += record["event"] == "skip"
        rollbacks += record["event"] == "rollback"
    return {"skipped": skipped, "rollbacks": rollbacks, "curve": curve}


def describe(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "none (diverged)"


def report(single: dict, runs: list[dict], settings: list[str], limit: dict, quick: bool) -> str:
    plain, clipped = single["plain"], single["clipped"]
    lines = [
        "# Gradient clipping and the loss cliff",
        "",
        f"**The lecture's claim.** {CLAIM}",
        "",
        f"**Our setup.** {'QUICK SMOKE VERSION: not a measurement. ' if quick else ''}Part 1: the single unit "
        f"x_t = w·σ(x_(t-1)) + b, x_0 = {X0}, loss (x_{T} - {TARGET})²; gradient descent at lr {single['lr']} for "
        f"{single['steps']} steps from {single['starts']} starts just on the high side of the wall, plain and with the "
        f"gradient norm clipped at {single['threshold']:g}. A start is *thrown* if one of its steps is longer than "
        f"{THROWN:g}, and *spikes* if its loss ever exceeds twice its starting loss.",
        "",
        "| single unit | thrown | loss spikes | median final loss | largest gradient norm seen |",
        "|---|---:|---:|---:|---:|",
        f"| plain | {100 * plain['thrown_fraction']:.0f}% | {100 * plain['spiked_fraction']:.0f}% | "
        f"{plain['median_final_loss']:.3g} | {plain['largest_gradient']:.3g} |",
        f"| clipped at {single['threshold']:g} | {100 * clipped['thrown_fraction']:.0f}% | "
        f"{100 * clipped['spiked_fraction']:.0f}% | {clipped['median_final_loss']:.3g} | "
        f"{clipped['largest_gradient']:.3g} |",
        "",
        f"Part 2: a character-level vanilla tanh RNN (`{' '.join(settings)}`), {limit['train.max_steps']} steps, "
        "without clipping and with the global gradient norm clipped at 1.",
        "",
        "| char RNN | validation nll | skipped steps | rollbacks | outcome |",
        "|---|---:|---:|---:|---|",
    ]
    for run in runs:
        lines.append(
            f"| clip {run['clip']} | {describe(run['validation_nll'])} | {run['skipped']} | {run['rollbacks']} | "
            f"{run['diverged'] or 'finished'} |"
        )
    lines += [
        "",
        f"**Agreement.** {agreement(single, runs)}",
        "",
        "![surface](clipping-surface.png)",
        "",
        "![char RNN](clipping-char-rnn.png)",
        "",
    ]
    return "\n".join(lines)


def agreement(single: dict, runs: list[dict]) -> str:
    plain, clipped = single["plain"], single["clipped"]
    by_clip = {run["clip"]: run for run in runs}
    fired = {clip: run["skipped"] + run["rollbacks"] for clip, run in by_clip.items()}
    nll = {clip: run["validation_nll"] for clip, run in by_clip.items()}
    char_better = nll["norm"] is not None and (nll["none"] is None or nll["norm"] < nll["none"])
    holds = clipped["thrown_fraction"] < plain["thrown_fraction"] and char_better and fired["norm"] <= fired["none"]
    partly = char_better or clipped["thrown_fraction"] < plain["thrown_fraction"]
    return (
        f"On the single unit {100 * plain['thrown_fraction']:.0f}% of plain runs are thrown by the wall against "
        f"{100 * clipped['thrown_fraction']:.0f}% clipped (the median final loss is {plain['median_final_loss']:.3g} "
        f"plain, {clipped['median_final_loss']:.3g} clipped: a throw can also land somewhere good). The char RNN "
        f"without clipping reaches {describe(nll['none'])} with the guard firing {fired['none']} times; with "
        f"clipping {describe(nll['norm'])}, {fired['norm']} times. The claim "
        f"{'holds' if holds else 'holds only in part' if partly else 'does not show'} here."
    )


def plot_surface(grid: int, starts, plain: dict, clipped: dict, path: Path) -> None:
    import torch

    plt = pyplot()
    w = torch.linspace(*W_RANGE, grid, dtype=torch.float64)
    b = torch.linspace(*B_RANGE, grid, dtype=torch.float64)
    mesh = torch.stack(torch.meshgrid(w, b, indexing="xy"), dim=-1)  # (grid, grid, 2)
    with torch.no_grad():
        surface = torch.log10(1 + single_unit_loss(mesh))
    figure, axes = plt.subplots(figsize=(7, 5.5))
    contour = axes.contourf(w.numpy(), b.numpy(), surface.numpy(), levels=30, cmap="viridis")
    figure.colorbar(contour, label="log10(1 + loss)")
    thrown = torch.nonzero(plain["thrown"]).flatten()
    index = int(thrown[0]) if len(thrown) else 0
    for result, style, label in ((plain, "r.-", "plain gradient descent"), (clipped, "w.-", "clipped")):
        track = result["path"][:, index]
        inside = (
            (track[:, 0] >= W_RANGE[0])
            & (track[:, 0] <= W_RANGE[1])
            & (track[:, 1] >= B_RANGE[0])
            & (track[:, 1] <= B_RANGE[1])
        )
        shown = track[: int(torch.nonzero(~inside).flatten()[0]) + 1] if not inside.all() else track
        axes.plot(shown[:, 0].numpy(), shown[:, 1].numpy(), style, markersize=3, linewidth=1, label=label)
    axes.plot(*starts[index].numpy(), "k*", markersize=12, label="start")
    axes.set_xlim(*W_RANGE)
    axes.set_ylim(*B_RANGE)
    axes.set_xlabel("w")
    axes.set_ylabel("b")
    axes.set_title(f"(x_{T} - {TARGET})² of x_t = w·σ(x_(t-1)) + b")
    axes.legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_training(runs: list[dict], path: Path) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6.5, 4.2))
    for run in runs:
        if run["curve"]:
            steps, losses = zip(*[(s, v) for s, v in run["curve"] if v is not None] or [(0, float("nan"))])
            axes.plot(
                steps, losses, label=f"clip {run['clip']} ({run['skipped']} skipped, {run['rollbacks']} rollbacks)"
            )
    axes.set_xlabel("step")
    axes.set_ylabel("training loss (nats per character)")
    axes.set_title("char-level vanilla RNN at a high learning rate")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
