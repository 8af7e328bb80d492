"""Forward+backward speed of rnnkit.nn layers against torch.nn, measured in the same run.

    python benchmarks/layers.py            # the standard cells at hidden 128 and 512, then the variants
    python benchmarks/layers.py --quick    # fewer repeats

Each measurement interleaves the two layers (rnnkit, torch, torch, rnnkit, ...) and takes the
median time per call, so a busy machine slows both alike. The ratio is rnnkit tokens/s divided
by torch.nn tokens/s: above 1 rnnkit is faster. Variants have no torch.nn counterpart, so their
ratio is against the standard torch.nn layer of the same kind and size. The `weight_norm` row puts
torch.nn.utils.parametrizations.weight_norm on weight_hh_l0 of both layers.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from rnnkit import nn as rnn

TORCH = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
OURS = {"rnn": rnn.RNN, "lstm": rnn.LSTM, "gru": rnn.GRU}
VARIANTS = [
    ("lstm", {"fused": False}),
    ("lstm", {"peephole": True}),
    ("lstm", {"gates": ""}),
    ("lstm", {"gates": "if"}),
    ("lstm", {"coupled": True}),
    ("gru", {"fused": False}),
    ("gru", {"reset": "before"}),
    ("gru", {"reset_gate": False}),
    ("rnn", {"fused": False}),
    ("rnn", {"nonlinearity": "relu"}),
]


def seconds_per_call(layer: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    output, _ = layer(x)
    output.sum().backward()
    return time.perf_counter() - start


def compare(kind: str, variant: dict, hidden: int, batch: int, length: int, repeats: int,
            weight_norm: bool = False) -> tuple[float, float]:
    """(rnnkit tokens/s, torch.nn tokens/s), interleaved medians."""
    torch.manual_seed(0)
    ours, theirs = OURS[kind](hidden, hidden, **variant), TORCH[kind](hidden, hidden)
    if weight_norm:
        ours, theirs = (torch.nn.utils.parametrizations.weight_norm(m, "weight_hh_l0") for m in (ours, theirs))
    x = torch.randn(length, batch, hidden)
    for layer in (ours, theirs):  # warm-up
        seconds_per_call(layer, x)
    times: dict[str, list[float]] = {"ours": [], "theirs": []}
    for repeat in range(repeats):
        order = ("ours", "theirs") if repeat % 2 == 0 else ("theirs", "ours")  # neither always goes first
        for name in order:
            times[name].append(seconds_per_call(ours if name == "ours" else theirs, x))
    tokens = batch * length
    return tokens / statistics.median(times["ours"]), tokens / statistics.median(times["theirs"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 15")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    args = parser.parse_args()
    repeats = 3 if args.quick else 15
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, length {args.length}, "
          f"median of {repeats}, forward+backward")
    print(f"{'layer':<28} {'hidden':>6} {'rnnkit tok/s':>13} {'torch tok/s':>12} {'ratio':>6}")
    rows = [(kind, {}, hidden, False) for hidden in (128, 512) for kind in ("rnn", "lstm", "gru")]
    rows += [(kind, variant, 128, False) for kind, variant in VARIANTS]
    rows += [("lstm", {}, 128, True)]
    for kind, variant, hidden, weight_norm in rows:
        ours, theirs = compare(kind, variant, hidden, args.batch, args.length, repeats, weight_norm)
        label = kind + "".join(f" {k}={v!r}" for k, v in variant.items()) + (" weight_norm" if weight_norm else "")
        print(f"{label:<28} {hidden:>6} {ours:>13,.0f} {theirs:>12,.0f} {ours / theirs:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
