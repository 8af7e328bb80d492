"""Quality and speed of the default character-level preset under a fixed wall-time budget.

    python benchmarks/char_lm.py                 # the shakespeare-char preset, 92 s of training
    python benchmarks/char_lm.py --seconds 30    # a quicker look

Trains `rnnkit train` (the default preset, tinyshakespeare shipped in the package, first 90% of the
characters train, last 10% validate) for the given seconds of training, then evaluates with
`rnnkit eval` by the protocol of EQUATIONS.md (the whole validation text as one stream, batch 1,
state carried). Prints the validation nll, bpc, tokens/s and steps.

The peer figure is nanoGPT's documented CPU recipe for shakespeare_char (a 4-layer, 128-wide
transformer, block 64, batch 12, 2000 iterations), which takes about 92 s on this kind of 2-core
machine and reaches validation loss 1.886 (nats per character, same split). It is quoted, not
rerun: nanoGPT is not a dependency of rnnkit.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from rnnkit.metrics_log import read_metrics

NANOGPT_CPU_VALIDATION_LOSS = 1.886
TARGET = 1.50


def rnnkit(*arguments: str) -> str:
    result = subprocess.run([sys.executable, "-m", "rnnkit", *arguments], check=True, stdout=subprocess.PIPE, text=True)
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=92.0, help="seconds of training (default 92)")
    parser.add_argument("--preset", default="shakespeare-char")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="extra config overrides passed to rnnkit train",
    )
    parser.add_argument("--keep", metavar="DIR", help="train into DIR and keep it (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        run = Path(args.keep or Path(scratch) / "run")
        overrides = [item for assignment in args.set for item in ("--set", assignment)]
        rnnkit("train", args.preset, "--out", str(run), "--max-time", str(args.seconds), *overrides)
        metrics = json.loads(rnnkit("eval", str(run)))
        end = read_metrics(run / "metrics.jsonl", "end")[-1]
        config = json.loads((run / "config.json").read_text())
    print(f"preset {args.preset}" + (f" with {' '.join(args.set)}" if args.set else ""))
    for section in ("model", "optim", "train"):
        print(f"  [{section}]", json.dumps(config[section]))
    print(
        f"training: {end['elapsed']:.1f} s, {end['step']} steps, {end['tokens']:,} tokens, "
        f"{end['tokens'] / end['elapsed']:,.0f} tokens/s"
    )
    print(
        f"validation (rnnkit eval, batch 1, {metrics['tokens']:,} tokens): nll {metrics['nll']:.4f} nats/char, "
        f"bpc {metrics['bpc']:.4f}, perplexity {metrics['perplexity']:.3f}"
    )
    print(
        f"target nll <= {TARGET:.2f}: {'met' if metrics['nll'] <= TARGET else 'NOT met'}; "
        f"nanoGPT CPU recipe (quoted): {NANOGPT_CPU_VALIDATION_LOSS}; "
        f"ratio of nll, nanoGPT / rnnkit: {NANOGPT_CPU_VALIDATION_LOSS / metrics['nll']:.3f}"
    )


if __name__ == "__main__":
    main()
