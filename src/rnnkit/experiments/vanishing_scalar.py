"""The lecture's univariate encoder, h_t = w·h_{t-1} + x_t: the gradient of the last state with respect
to an early one is a power of w, so it explodes for w = 1.1 and vanishes for w = 0.9 over 50 steps.
The gradients here come from autograd on the recurrence itself, not from the closed form, and are
printed beside the lecture's 117.4 and 0.00515 and beside both candidate exponents (w^(T-1) and w^T).
The tanh case, h_t = tanh(w·h_{t-1} + x_t) with random inputs, shows that φ' < 1 makes even w = 1.1
vanish: its gradient is the product of w·φ'(a_t) over the steps.

    rnnkit experiment vanishing-scalar [--steps 50] [--quick] [--out DIR]
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from rnnkit.errors import UsageError
from rnnkit.experiments import add_output_arguments, output_directory, write_report, write_results
from rnnkit.plots import pyplot

NAME = "vanishing-scalar"
SUMMARY = "∂h_T/∂h_k of the lecture's one-unit RNN for w = 1.1 and 0.9: autograd beside 117.4 and 0.00515"
CLAIM = (
    "For the univariate encoder h_t = w·h_{t-1} + x_t, ∂h_T/∂h_1 = w^(T-1): over T = 50 steps w = 1.1 "
    "gives 117.4 and w = 0.9 gives 0.00515."
)
LECTURE = {1.1: 117.4, 0.9: 0.00515}
WEIGHTS = (1.1, 0.9)
INPUT_SEED = 0  # the tanh case's inputs x_t ~ N(0, 1)


def add_arguments(parser) -> None:
    add_output_arguments(parser, NAME, "T = 10 and a shorter plot")
    parser.add_argument(
        "--steps", type=int, default=50, metavar="T", help="sequence length T (default 50, the lecture's)"
    )


def sequence(steps: int, activation: str):
    """The inputs x_1..x_T: ones for the linear case, N(0, 1) draws for the tanh case."""
    import torch  # here, not at the top: `rnnkit` lists the experiments without importing torch

    if activation == "linear":
        return torch.ones(steps, dtype=torch.float64)
    return torch.randn(steps, dtype=torch.float64, generator=torch.Generator().manual_seed(INPUT_SEED))


def state_gradients(w: float, steps: int, activation: str) -> list[float]:
    """∂h_T/∂h_k for k = 0..T-1 by autograd on h_t = φ(w·h_{t-1} + x_t), h_0 = 0: entry k is the gradient
    reaching h_k from h_T."""
    import torch

    inputs = sequence(steps, activation)
    weight = torch.tensor(w, dtype=torch.float64)
    states = [torch.zeros((), dtype=torch.float64, requires_grad=True)]
    for t in range(steps):
        a = weight * states[-1] + inputs[t]
        states.append(torch.tanh(a) if activation == "tanh" else a)
        states[-1].retain_grad()
    states[-1].backward()
    return [state.grad.item() for state in states[:-1]]


def closed_form(w: float, steps: int, activation: str) -> list[float]:
    """The same gradients from the chain rule written out: ∏_{t=k+1..T} w·φ'(a_t)."""
    inputs = sequence(steps, activation).tolist()
    h, factors = 0.0, []
    for t in range(steps):
        a = w * h + inputs[t]
        h = math.tanh(a) if activation == "tanh" else a
        factors.append(w * (1 - h * h) if activation == "tanh" else w)
    products = []
    for k in range(steps):
        product = 1.0
        for factor in factors[k:]:
            product *= factor
        products.append(product)
    return products


def run(args) -> int:
    steps = 10 if args.quick else args.steps
    if steps < 2:
        raise UsageError(f"--steps must be 2 or more, got {steps}")
    pyplot()
    directory = output_directory(args.out, NAME)
    curves = {
        f"{activation} w={w:g}": state_gradients(w, steps, activation)
        for activation in ("linear", "tanh")
        for w in WEIGHTS
    }
    rows = []
    for w in WEIGHTS:
        gradients = curves[f"linear w={w:g}"]
        rows.append(
            {
                "w": w,
                "lecture": LECTURE[w],
                "from_h0": gradients[0],
                "from_h1": gradients[1],
                "w_pow_T": w**steps,
                "w_pow_T_minus_1": w ** (steps - 1),
                "tanh_from_h1": curves[f"tanh w={w:g}"][1],
            }
        )
    matches = {row["w"]: exponent_matching(row, steps) for row in rows}
    write_results(
        directory,
        {
            "experiment": NAME,
            "quick": args.quick,
            "T": steps,
            "rows": rows,
            "matching_exponent": {str(w): e for w, e in matches.items()},
            "curves": {name: values for name, values in curves.items()},
        },
    )
    write_report(directory, report(rows, steps, matches, args.quick))
    plot(curves, steps, directory / "vanishing-scalar.png")
    for row in rows:
        print(
            f"rnnkit experiment {NAME}: w = {row['w']:g}, T = {steps}: ∂h_T/∂h_1 = {row['from_h1']:.6g}, "
            f"∂h_T/∂h_0 = {row['from_h0']:.6g} (lecture {row['lecture']:g}); tanh: {row['tanh_from_h1']:.3g}",
            file=sys.stderr,
        )
    print(f"rnnkit experiment {NAME}: results.json, report.md and vanishing-scalar.png in {directory}", file=sys.stderr)
    return 0


def exponent_matching(row: dict, steps: int) -> str | None:
    """Which power of w reproduces the lecture's number to the digits it prints, if any."""
    if same_digits(row["w_pow_T"], row["lecture"]):
        return f"w^{steps}"
    if same_digits(row["w_pow_T_minus_1"], row["lecture"]):
        return f"w^{steps - 1}"
    return None


def same_digits(value: float, printed: float) -> bool:
    """Equal to the three significant digits the lecture prints."""
    return f"{value:.3g}" == f"{printed:.3g}"


def report(rows: list[dict], steps: int, matches: dict, quick: bool) -> str:
    lines = [
        "# Vanishing and exploding gradients of a one-unit RNN",
        "",
        f"**The lecture's claim.** {CLAIM}",
        "",
        f"**Our setup.** {'QUICK SMOKE VERSION (T = 10): not the lecture setting. ' if quick else ''}"
        f"h_0 = 0, x_t = 1, T = {steps}; gradients by autograd through the recurrence, in float64. "
        "∂h_T/∂h_1 spans T-1 steps and ∂h_T/∂h_0 spans T steps. The tanh rows use h_t = tanh(w·h_{t-1} + x_t) "
        f"with x_t ~ N(0, 1) (seed {INPUT_SEED}).",
        "",
        "| w | lecture | ∂h_T/∂h_1 (autograd) | ∂h_T/∂h_0 (autograd) | w^(T-1) | w^T | tanh: ∂h_T/∂h_1 |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['w']:g} | {row['lecture']:g} | {row['from_h1']:.6g} | {row['from_h0']:.6g} | "
            f"{row['w_pow_T_minus_1']:.6g} | {row['w_pow_T']:.6g} | {row['tanh_from_h1']:.3g} |"
        )
    lines += [
        "",
        f"**Agreement.** {agreement(rows, steps, matches)}",
        "",
        "![gradient against distance](vanishing-scalar.png)",
        "",
    ]
    return "\n".join(lines)


def agreement(rows: list[dict], steps: int, matches: dict) -> str:
    if all(match == f"w^{steps}" for match in matches.values()):
        found = (
            f"The lecture's numbers are w^{steps} (1.1^{steps} = {rows[0]['w_pow_T']:.4g}, "
            f"0.9^{steps} = {rows[1]['w_pow_T']:.4g}), the gradient over {steps} steps (∂h_T/∂h_0 here), "
            f"not its formula's w^(T-1) (∂h_T/∂h_1 = {rows[0]['from_h1']:.4g} and {rows[1]['from_h1']:.3g}); "
            "autograd agrees with both powers to float64 precision."
        )
    elif all(match == f"w^{steps - 1}" for match in matches.values()):
        found = "The lecture's numbers are w^(T-1) = ∂h_T/∂h_1, as its formula says; autograd agrees."
    else:
        found = (
            f"Neither w^T nor w^(T-1) reproduces the lecture's numbers at T = {steps} "
            f"(matches: {', '.join(f'{w:g}: {m}' for w, m in matches.items())})."
        )
    tanh = rows[0]["tanh_from_h1"]
    return (
        f"{found} With tanh, the same w = 1.1 gives {tanh:.3g}: each step multiplies by w·φ'(a_t) < 1 "
        f"once |a_t| is large enough, so the gradient {'vanishes' if abs(tanh) < 1e-2 else 'does not vanish here'}."
    )


def plot(curves: dict[str, list[float]], steps: int, path: Path) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6.5, 4.2))
    for name, values in curves.items():
        distances = [steps - k for k in range(len(values))]
        axes.semilogy(distances, [abs(v) for v in values], "--" if name.startswith("tanh") else "-", label=name)
    axes.axhline(1.0, color="grey", linewidth=0.8)
    axes.set_xlabel("distance T - k (steps)")
    axes.set_ylabel("|∂h_T/∂h_k|")
    axes.set_title("one-unit RNN: the gradient is a product of T - k factors")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
