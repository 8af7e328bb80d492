"""Forward+backward speed of rnnkit.nn layers against torch.nn, measured in the same run, and what the
fused recurrence kernel changes end to end.

    python benchmarks/layers.py                 # every section but `experiment`
    python benchmarks/layers.py --quick         # fewer repeats
    python benchmarks/layers.py --sections variants memory
    python benchmarks/layers.py --sections experiment   # the gate-ablation experiment, both engines (long)

Sections:
- standard: the six torch.nn layers' twins at hidden 128 and 512 (and weight_norm), ratio to torch.nn.
- variants: every cell variant (rnnkit.spec.EVERY_VARIANT) and the standard GRU at H in {50, 128, 256,
  512}, 1 and 2 layers, batch 32, window 64; ratio to torch.nn.LSTM of the same size (targets: LSTM
  variants >= 0.9, GRU variants >= 1.0), and the standard GRU's ratio to torch.nn.GRU (target >= 1.5).
- floor: every variant on rnnkit's kernel at H in {128, 256, 512}, batch 32, window 64: the time of a
  forward+backward step, the time of just the matrix products that step must do (input projection,
  the T recurrent products forward and back, the weight and input gradients) timed alone with the same
  library calls, and their ratio (target <= 1.3 at H >= 256).
- memory: what one forward over a window of 512 holds for its backward, kernel against equations.
- sampling: `rnnkit sample --length 5000` tokens/s of small char LMs, the kernel against the equations.
- experiment: `rnnkit experiment gate-ablation --seeds 1` end to end, the kernel against the equations.
- parallel: rnnkit.nn.MinGRU by its parallel scan against its own sequential loop, torch.nn.GRU and
  rnnkit's fused GRU, at H in {128, 512}, batch 16, T in {64, 512, 4096}, on 1 and 2 threads, and the
  memory one forward holds for its backward (targets: parallel >= 10x sequential at T = 4096, >= 1.0x
  torch.nn.GRU at T >= 512).

Speed is tokens/s of forward+backward. Within a section every layer of one size is timed in turn,
round after round, and each keeps its best round, so a busy machine slows all alike. "Equations" is the
step-by-step path every variant took before the kernel (RNNKIT_KERNELS=0 or fused=False).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from rnnkit import nn as rnn
from rnnkit.nn import kernels
from rnnkit.spec import EVERY_VARIANT, CellSpec

TORCH = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
OURS = {"rnn": rnn.RNN, "lstm": rnn.LSTM, "gru": rnn.GRU}
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SECTIONS = ("standard", "variants", "floor", "memory", "sampling", "parallel", "experiment")


def seconds_per_call(layer: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    output, _ = layer(x)
    output.sum().backward()
    return time.perf_counter() - start


def best_tokens_per_second(layers: dict[str, torch.nn.Module], x: torch.Tensor, repeats: int) -> dict[str, float]:
    """Each layer timed once per round, in turn (the order reversed every other round), best round kept."""
    for layer in layers.values():  # warm-up
        seconds_per_call(layer, x)
    best = {name: float("inf") for name in layers}
    names = list(layers)
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            best[name] = min(best[name], seconds_per_call(layers[name], x))
    tokens = x.shape[0] * x.shape[1]
    return {name: tokens / seconds for name, seconds in best.items()}


def standard(args) -> None:
    print(f"\n## standard layers against torch.nn: batch {args.batch}, window 128, best of {args.repeats}")
    print(f"{'layer':<22} {'hidden':>6} {'rnnkit tok/s':>13} {'torch tok/s':>12} {'ratio':>6}")
    for hidden in (128, 512):
        for kind in ("rnn", "lstm", "gru"):
            torch.manual_seed(0)
            layers = {"ours": OURS[kind](hidden, hidden), "theirs": TORCH[kind](hidden, hidden)}
            speed = best_tokens_per_second(layers, torch.randn(128, args.batch, hidden), args.repeats)
            print(
                f"{kind:<22} {hidden:>6} {speed['ours']:>13,.0f} {speed['theirs']:>12,.0f} "
                f"{speed['ours'] / speed['theirs']:>6.2f}",
                flush=True,
            )
    torch.manual_seed(0)
    layers = {
        name: torch.nn.utils.parametrizations.weight_norm(layer, "weight_hh_l0")
        for name, layer in (("ours", rnn.LSTM(128, 128)), ("theirs", torch.nn.LSTM(128, 128)))
    }
    speed = best_tokens_per_second(layers, torch.randn(128, args.batch, 128), args.repeats)
    print(
        f"{'lstm weight_norm':<22} {128:>6} {speed['ours']:>13,.0f} {speed['theirs']:>12,.0f} "
        f"{speed['ours'] / speed['theirs']:>6.2f}",
        flush=True,
    )


def variants(args) -> None:
    sizes = [(hidden, layers) for hidden in args.hidden for layers in (1, 2)]
    specs = [spec for spec in EVERY_VARIANT if spec.kind != "rnn"]
    print(f"\n## every variant against torch.nn.LSTM of the same size: batch 32, window 64, best of {args.repeats}")
    print("(standard gru: against torch.nn.GRU; the standard lstm and lstm forget_bias=1 run torch's own kernel)")
    print(f"{'variant':<30}" + "".join(f"{f'H{h} L{n}':>10}" for h, n in sizes) + f"{'target':>8}")
    ratios: dict[str, list[float]] = {spec.variant_name: [] for spec in specs}
    ratios["gru (vs torch.nn.GRU)"] = []
    for hidden, num_layers in sizes:
        torch.manual_seed(0)
        layers = {
            "torch lstm": torch.nn.LSTM(hidden, hidden, num_layers),
            "torch gru": torch.nn.GRU(hidden, hidden, num_layers),
        }
        layers |= {spec.variant_name: OURS[spec.kind](hidden, hidden, num_layers, **spec.keywords()) for spec in specs}
        speed = best_tokens_per_second(layers, torch.randn(64, 32, hidden), args.repeats)
        for spec in specs:
            ratios[spec.variant_name].append(speed[spec.variant_name] / speed["torch lstm"])
        ratios["gru (vs torch.nn.GRU)"].append(speed["gru"] / speed["torch gru"])
        print(
            f"  H={hidden} L={num_layers}: torch.nn.LSTM {speed['torch lstm']:,.0f} tok/s, "
            f"torch.nn.GRU {speed['torch gru']:,.0f} tok/s",
            flush=True,
        )
    for name, values in ratios.items():
        target = 1.5 if name.startswith("gru (") else 1.0 if name.startswith("gru") else 0.9
        print(
            f"{name:<30}"
            + "".join(f"{value:>10.2f}" for value in values)
            + f"{target:>8.1f}"
            + ("" if min(values) >= target else "   below"),
            flush=True,
        )


def best_seconds(call, repeats: int) -> float:
    call()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def products(T: int, B: int, H: int, G: int):
    """The matrix products a forward+backward of one layer and direction must do, with the library calls
    the step makes (input size H): the input projection, T recurrent products forward and T back, and
    the three products of the weight and input gradients, on tensors of the step's shapes."""
    x, w_ih, b_ih = torch.randn(T * B, H), torch.randn(G * H, H), torch.randn(G * H)
    w_hh, h, da = torch.randn(G * H, H), torch.randn(B, H), torch.randn(B, G * H)
    d_all, h_all = torch.randn(T * B, G * H), torch.randn(T * B, H)

    def call() -> None:
        torch.addmm(b_ih, x, w_ih.t())  # xw = W_ih x + b_ih, every step at once
        for _ in range(T):
            torch.mm(h, w_hh.t())  # the recurrent product of each step, forward
        for _ in range(T):
            torch.mm(da, w_hh)  # dh_prev = da W_hh of each step, backward
        torch.mm(d_all.t(), h_all)  # dW_hh
        torch.mm(d_all.t(), x)  # dW_ih
        torch.mm(d_all, w_ih)  # dx

    return call


def floor(args) -> None:
    """How close the fused kernel's step comes to the matrix products it cannot avoid."""
    T, B = 64, 32
    specs = [spec for spec in EVERY_VARIANT if not rnn.layers.uses_torch_kernel(spec, torch.device("cpu"))]
    print(f"\n## the kernel's floor: one layer, batch {B}, window {T}, input = hidden; best of {args.repeats}")
    print("step: forward+backward through rnnkit's kernel; products: only its matrix products, timed alone")
    print(f"{'variant':<30}" + "".join(f"{f'H{h} step ms':>13}{'products':>10}{'ratio':>7}" for h in FLOOR_HIDDEN))
    for spec in specs:
        row = f"{spec.variant_name:<30}"
        for hidden in FLOOR_HIDDEN:
            torch.manual_seed(0)
            layer = OURS[spec.kind](hidden, hidden, **spec.keywords())
            x = torch.randn(T, B, hidden, requires_grad=True)  # as in a stacked layer: dx is computed too
            step = best_seconds(lambda: seconds_per_call(layer, x), args.repeats)
            matrix = best_seconds(products(T, B, hidden, len(spec.blocks)), args.repeats)
            row += f"{1000 * step:>13.2f}{1000 * matrix:>10.2f}{step / matrix:>7.2f}"
        print(row, flush=True)


FLOOR_HIDDEN = (128, 256, 512)


MEMORY_PROBE = """
import os, sys, torch
from rnnkit import nn as rnn
from rnnkit.nn import kernels
kind, keywords, fused = sys.argv[1], eval(sys.argv[2]), sys.argv[3] == "1"
kernels.load()

def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

layer = {"lstm": rnn.LSTM, "gru": rnn.GRU}[kind](256, 256, fused=fused, **keywords)
x = torch.randn(512, 32, 256)
before = resident()
output, _ = layer(x)
print((resident() - before) / 2**20)
"""


def memory(args) -> None:
    print("\n## memory held for backward after one forward: T=512, batch 32, H=256 (growth of the resident set, MiB)")
    print(f"{'variant':<24} {'kernel':>8} {'equations':>10} {'ratio':>6}")
    for kind, keywords in (
        ("lstm", {"peephole": True}),
        ("lstm", {"gates": "if"}),
        ("gru", {}),
        ("gru", {"reset": "before"}),
    ):
        held = []
        for fused in ("1", "0"):
            result = subprocess.run(
                [sys.executable, "-c", MEMORY_PROBE, kind, repr(keywords), fused],
                check=True,
                stdout=subprocess.PIPE,
                text=True,
            )
            held.append(float(result.stdout.split()[-1]))
        name = CellSpec(kind, **keywords).variant_name
        print(f"{name:<24} {held[0]:>8.0f} {held[1]:>10.0f} {held[0] / held[1]:>6.2f}", flush=True)


def rnnkit_command(*arguments: str, kernel: bool = True) -> subprocess.CompletedProcess:
    environment = {**os.environ, "RNNKIT_KERNELS": "1" if kernel else "0"}
    return subprocess.run(
        [sys.executable, "-m", "rnnkit", *arguments],
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def single_steps_per_second(layer: torch.nn.Module, steps: int = 500) -> float:
    """Batch-1 steps of one layer under no_grad, the state carried: sampling's inner loop."""
    x = torch.randn(1, 1, layer.input_size)
    state = None
    with torch.no_grad():
        start = time.perf_counter()
        for _ in range(steps):
            _, state = layer(x, state)
    return steps / (time.perf_counter() - start)


def sampling(args) -> None:
    print(f"\n## one batch-1 step of a 1x256 layer under no_grad: steps/s, best of {args.repeats} rounds of 500")
    print(f"{'layer':<34} {'kernel':>9} {'equations':>10} {'ratio':>6}")
    for kind, keywords in (
        ("lstm", {"peephole": True}),
        ("lstm", {"gates": "if"}),
        ("gru", {}),
        ("gru", {"reset": "before"}),
    ):
        torch.manual_seed(0)
        layers = [OURS[kind](256, 256, **keywords), OURS[kind](256, 256, fused=False, **keywords)]
        best = [0.0, 0.0]
        for repeat in range(args.repeats):
            for index in (0, 1) if repeat % 2 == 0 else (1, 0):
                best[index] = max(best[index], single_steps_per_second(layers[index]))
        label = CellSpec(kind, **keywords).variant_name
        print(f"{label:<34} {best[0]:>9,.0f} {best[1]:>10,.0f} {best[0] / best[1]:>6.2f}", flush=True)
    print("\n## rnnkit sample --length 5000 (batch 1, one step at a time): tokens/s, best of 3")
    print(f"{'model':<34} {'kernel':>9} {'equations':>10} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as directory:
        for label, settings in (
            ("lstm peephole 1x256", ["model.cell=lstm", "model.peephole=true"]),
            ("gru 1x256", ["model.cell=gru"]),
            ("lstm 1x256 (torch's kernel)", ["model.cell=lstm"]),
        ):
            run = Path(directory) / re.sub(r"\W+", "-", label)
            overrides = [f"--set={value}" for value in (*settings, "model.hidden_size=256", "model.num_layers=1")]
            rnnkit_command("train", "--out", str(run), "--max-steps", "1", *overrides)
            speeds = []
            for kernel in (True, False):
                best = float("inf")
                for _ in range(3):
                    start = time.perf_counter()
                    rnnkit_command("sample", str(run), "--length", "5000", "--seed", "1", kernel=kernel)
                    best = min(best, time.perf_counter() - start)
                speeds.append(5000 / best)
            print(f"{label:<34} {speeds[0]:>9,.0f} {speeds[1]:>10,.0f} {speeds[0] / speeds[1]:>6.2f}", flush=True)
    print("(whole-command time, start-up included)")


def experiment(args) -> None:
    print(
        f"\n## rnnkit experiment gate-ablation --seeds 1{' --quick' if args.quick else ''}, end to end: "
        "the kernel against the equations"
    )
    train, dev = DATA / "sst" / "stsa.binary.train", DATA / "sst" / "stsa.binary.dev"
    seconds = []
    with tempfile.TemporaryDirectory() as directory:
        for kernel in (True, False):
            start = time.perf_counter()
            rnnkit_command(
                "experiment",
                "gate-ablation",
                "--data",
                str(train),
                "--val",
                str(dev),
                "--seeds",
                "1",
                "--out",
                str(Path(directory) / str(kernel)),
                *(["--quick"] if args.quick else []),
                kernel=kernel,
            )
            seconds.append(time.perf_counter() - start)
            results = json.loads((Path(directory) / str(kernel) / "results.json").read_text())
            print(
                f"{'kernel' if kernel else 'equations':<10} {seconds[-1]:>8.0f} s  "
                f"(rows: {len(results.get('summary', []))})",
                flush=True,
            )
    print(f"speed-up: {seconds[1] / seconds[0]:.2f}x")


PARALLEL_LAYERS = {
    "MinGRU parallel": "rnn.MinGRU(H, H, mode='parallel')",
    "MinGRU sequential": "rnn.MinGRU(H, H, mode='sequential')",
    "torch.nn.GRU": "torch.nn.GRU(H, H)",
    "rnnkit GRU (fused)": "rnn.GRU(H, H)",
}
PEAK_PROBE = """
import os, sys, torch
from rnnkit import nn as rnn
from rnnkit.nn import kernels
kernels.load()

def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

H, T = int(sys.argv[2]), int(sys.argv[3])
layer = eval(sys.argv[1])
x = torch.randn(T, 16, H)
before = resident()
output, _ = layer(x)
print((resident() - before) / 2**20)
"""


def parallel(args) -> None:
    repeats = min(args.repeats, 3)
    print(
        f"\n## minGRU's parallel scan: forward+backward tokens/s, batch 16, best of {repeats} "
        "(the sequential loop: one call); MiB one forward holds for its backward (resident-set growth)"
    )
    print(f"{'layer':<20} {'threads':>7} " + "".join(f"{f'H{h} T{n}':>12}" for h in (128, 512) for n in PARALLEL_T))
    rows: dict[tuple[str, int], list[float]] = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for hidden in (128, 512):
            for steps in PARALLEL_T:
                torch.manual_seed(0)
                layers = {
                    name: eval(code, {"rnn": rnn, "torch": torch, "H": hidden})
                    for name, code in PARALLEL_LAYERS.items()
                }
                x = torch.randn(steps, 16, hidden)
                loop = layers.pop("MinGRU sequential")  # one Python step per token: timed once, after a short warm-up
                speed = best_tokens_per_second(layers, x, repeats)
                seconds_per_call(loop, x[:8])
                speed["MinGRU sequential"] = steps * 16 / seconds_per_call(loop, x)
                for name, value in speed.items():
                    rows.setdefault((name, threads), []).append(value)
    torch.set_num_threads(os.cpu_count() or 1)
    for (name, threads), speeds in rows.items():
        print(f"{name:<20} {threads:>7} " + "".join(f"{value:>12,.0f}" for value in speeds), flush=True)
    for threads in (1, 2):
        ours = rows[("MinGRU parallel", threads)]
        for other in ("MinGRU sequential", "torch.nn.GRU", "rnnkit GRU (fused)"):
            ratios = [a / b for a, b in zip(ours, rows[(other, threads)])]
            print(f"ratio parallel / {other:<19} {threads} thread(s) " + "".join(f"{r:>12.2f}" for r in ratios))
    print(f"{'MiB held':<20} {'':>7} " + "".join(f"{f'H{h} T{n}':>12}" for h in (128, 512) for n in PARALLEL_T))
    for name, code in PARALLEL_LAYERS.items():
        peaks = []
        for hidden in (128, 512):
            for steps in PARALLEL_T:
                result = subprocess.run(
                    [sys.executable, "-c", PEAK_PROBE, code, str(hidden), str(steps)],
                    check=True,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                peaks.append(float(result.stdout.split()[-1]))
        print(f"{name:<20} {'':>7} " + "".join(f"{peak:>12.0f}" for peak in peaks), flush=True)


PARALLEL_T = (64, 512, 4096)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="2 repeats instead of 7, H 50 and 256 only, the experiment's --quick"
    )
    parser.add_argument("--batch", type=int, default=32, help="batch of the standard section (default 32)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=[s for s in SECTIONS if s != "experiment"])
    parser.add_argument("--hidden", type=int, nargs="+", default=[50, 128, 256, 512])
    args = parser.parse_args()
    args.repeats = 2 if args.quick else 7
    if args.quick:
        args.hidden = [50, 256]
    built = kernels.load() is not None
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}; rnnkit kernel: "
        f"{'built' if built else 'unavailable (' + str(kernels.unavailable_reason()) + ')'}"
    )
    for section in args.sections:
        globals()[section](args)


if __name__ == "__main__":
    main()
