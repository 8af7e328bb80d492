"""The wikitext2-word preset side by side with pytorch/examples' word_language_model, on the same machine
in the same run.

    python benchmarks/word_lm_peer.py --peer ~/src/examples/word_language_model
    python benchmarks/word_lm_peer.py --peer DIR --threads 1 --keep runs/peer-bench

The peer is run as its README says, `main.py --epochs 1 --tied` (a 2x200 LSTM, SGD lr 20, batch 20,
bptt 35), on WikiText-2's train and valid files. Its data directory also needs a test.txt; the valid
file is copied there, because the test split is not used here. Then `rnnkit train wikitext2-word` is
given the peer's epoch time (its printed epoch time, which like rnnkit's train.max_time includes the
validation pass) or --seconds, and `rnnkit eval` measures the best checkpoint on the valid file.
Prints both valid perplexities and times. The peer's code is not part of rnnkit: check it out yourself
(github.com/pytorch/examples).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rnnkit.metrics_log import read_metrics

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wikitext-2"
EPOCH_END = re.compile(r"end of epoch\s+1 \| time:\s*([\d.]+)s \| valid loss\s*([\d.]+) \| valid ppl\s*([\d.]+)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer", type=Path, required=True, help="pytorch/examples' word_language_model directory")
    parser.add_argument("--data", type=Path, default=DATA, help=f"WikiText-2's directory (default {DATA})")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for both (default 2)")
    parser.add_argument(
        "--seconds",
        type=float,
        help="rnnkit's training time (default: the peer's epoch time; the issue's budget is 1128)",
    )
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the peer's data and rnnkit's run in DIR")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        corpus = root / "peer-data"
        corpus.mkdir(parents=True, exist_ok=True)
        for name, source in (
            ("train.txt", "wiki.train.tokens"),
            ("valid.txt", "wiki.valid.tokens"),
            ("test.txt", "wiki.valid.tokens"),
        ):
            shutil.copyfile(args.data / source, corpus / name)
        environment = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
        peer = subprocess.run(
            [
                sys.executable,
                "main.py",
                "--epochs",
                "1",
                "--tied",
                "--data",
                str(corpus),
                "--save",
                str(root / "peer-model.pt"),
            ],
            cwd=args.peer,
            env=environment,
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
        found = EPOCH_END.search(peer)
        if found is None:
            sys.exit(f"word_lm_peer: the peer's output has no end-of-epoch line:\n{peer[-2000:]}")
        seconds, peer_perplexity = float(found.group(1)), float(found.group(3))
        print(
            f"peer word_language_model (--epochs 1 --tied): {seconds:.0f} s, valid perplexity {peer_perplexity:.1f}",
            flush=True,
        )
        run = root / "rnnkit-run"
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
                str(args.seconds or seconds),
                "--set",
                f"train.threads={args.threads}",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        result = json.loads(
            subprocess.run(
                [sys.executable, "-m", "rnnkit", "eval", str(run)], check=True, stdout=subprocess.PIPE, text=True
            ).stdout
        )
        end = read_metrics(run / "metrics.jsonl", "end")[-1]
    print(
        f"rnnkit wikitext2-word: {end['elapsed']:.0f} s, {end['step']} steps, valid perplexity "
        f"{result['perplexity']:.1f} (rnnkit eval: batch 1, {result['tokens']:,} tokens)"
    )
    print(f"perplexity ratio, peer / rnnkit: {peer_perplexity / result['perplexity']:.2f}")


if __name__ == "__main__":
    main()
