"""Quality of the task presets on their standard data, over several seeds, under the preset's time budget.

    python benchmarks/presets.py sst2 --seeds 1 2 3          # SST-2 dev accuracy (target: best >= 86.0, mean >= 85.5)
    python benchmarks/presets.py ud-pos --seeds 1 2 3        # UD English EWT dev UPOS accuracy (target >= 95.3)
    python benchmarks/presets.py ptb-word                    # Penn Treebank valid perplexity (target <= 100)
    python benchmarks/presets.py wikitext2-word              # WikiText-2 valid perplexity (target <= 150)
    python benchmarks/presets.py sst2 --seconds 60 --threads 1 --keep runs/bench   # a quicker look

Each seed is `rnnkit train PRESET --data TRAIN --val DEV --set train.seed=SEED` on the files of
../shared/data, then `rnnkit eval RUN --data DEV` on the run's best checkpoint. Prints one line per
seed (the metric, the training seconds and steps) and the best and the mean. Only train and dev
files are read: test splits are not used for anything here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rnnkit.metrics_log import read_metrics

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# preset: (training file, validation file, the metric rnnkit eval prints, higher is better, target)
PRESETS = {
    "sst2": ("sst/trees/train.txt", "sst/stsa.binary.dev", "accuracy", True, 0.860),
    "ud-pos": ("ud-en-ewt/en_ewt-ud-train.conllu", "ud-en-ewt/en_ewt-ud-dev.conllu", "accuracy", True, 0.953),
    "ptb-word": ("ptb/ptb.train.txt", "ptb/ptb.valid.txt", "perplexity", False, 100.0),
    "wikitext2-word": ("wikitext-2/wiki.train.tokens", "wikitext-2/wiki.valid.tokens", "perplexity", False, 150.0),
}


def rnnkit(*arguments: str) -> str:
    result = subprocess.run([sys.executable, "-m", "rnnkit", *arguments], check=True, stdout=subprocess.PIPE, text=True)
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset", choices=sorted(PRESETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="training seeds (default 1)")
    parser.add_argument("--seconds", type=float, help="training seconds (default: the preset's train.max_time)")
    parser.add_argument("--threads", type=int, help="torch threads (default: the preset's train.threads)")
    parser.add_argument("--data", type=Path, default=DATA, help=f"the data directory (default {DATA})")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="extra config overrides passed to rnnkit train",
    )
    parser.add_argument("--keep", type=Path, metavar="DIR", help="train into DIR/seedN and keep the runs")
    args = parser.parse_args()
    train, dev, metric, higher, target = PRESETS[args.preset]
    overrides = [item for assignment in args.set for item in ("--set", assignment)]
    if args.seconds is not None:
        overrides += ["--max-time", str(args.seconds)]
    if args.threads is not None:
        overrides += ["--set", f"train.threads={args.threads}"]
    scores = []
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        for seed in args.seeds:
            run = root / f"seed{seed}"
            rnnkit(
                "train",
                args.preset,
                "--data",
                str(args.data / train),
                "--val",
                str(args.data / dev),
                "--out",
                str(run),
                "--set",
                f"train.seed={seed}",
                *overrides,
            )
            result = json.loads(rnnkit("eval", str(run), "--data", str(args.data / dev)))
            end = read_metrics(run / "metrics.jsonl", "end")[-1]
            best = (run / "checkpoints" / "best").read_text().strip()
            scores.append(result[metric])
            print(
                f"seed {seed}: dev {metric} {result[metric]:.4f}; trained {end['elapsed']:.0f} s, "
                f"{end['step']} steps; best checkpoint {best}",
                flush=True,
            )
    pick = max if higher else min
    mean = statistics.mean(scores)
    spread = f" ± {statistics.stdev(scores):.4f}" if len(scores) > 1 else ""
    met = pick(scores) >= target if higher else pick(scores) <= target
    print(
        f"{args.preset}: best {pick(scores):.4f}, mean {mean:.4f}{spread} over {len(scores)} seed(s); "
        f"target {'>=' if higher else '<='} {target}: {'met' if met else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
