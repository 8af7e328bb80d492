"""Training tokens/s of the wikitext2-word preset with its adaptive softmax against a full softmax over
WikiText-2's 33k-word vocabulary, measured in the same run.

    python benchmarks/softmax_speed.py                    # 120 s of training each
    python benchmarks/softmax_speed.py --seconds 30 --threads 1

Each variant is `rnnkit train wikitext2-word` for the given seconds (no periodic validation), and its
speed is the median of the tokens/s the trainer logs; the first logged interval is skipped as warm-up.
The two runs alternate twice (adaptive, full, adaptive, full) so that a change in the machine's load
touches both, and the ratio is of the per-variant medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rnnkit.metrics_log import read_metrics

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wikitext-2"
VARIANTS = {"adaptive": [], "full": ["--set", "model.softmax=full", "--set", "model.cutoffs=[]"]}


def tokens_per_second(run: Path) -> list[float]:
    return [record["tokens_per_second"] for record in read_metrics(run / "metrics.jsonl", "train")][1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="training seconds per run (default 120)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--data", type=Path, default=DATA, help=f"WikiText-2's directory (default {DATA})")
    args = parser.parse_args()
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(2):
            for name, overrides in VARIANTS.items():
                run = Path(scratch) / f"{name}-{repeat}"
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "rnnkit",
                        "train",
                        "wikitext2-word",
                        "--data",
                        str(args.data / "wiki.train.tokens"),
                        "--val",
                        str(args.data / "wiki.valid.tokens"),
                        "--out",
                        str(run),
                        "--max-time",
                        str(args.seconds),
                        "--set",
                        f"train.threads={args.threads}",
                        "--set",
                        "train.eval_every=0",
                        "--set",
                        "train.log_every=10",
                        *overrides,
                    ],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
                rates[name] += tokens_per_second(run)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, median in medians.items():
        print(f"{name:>8} softmax: {median:,.0f} tokens/s (median of {len(rates[name])} intervals)")
    print(f"adaptive / full: {medians['adaptive'] / medians['full']:.2f}x")


if __name__ == "__main__":
    main()
