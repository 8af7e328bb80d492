"""Peak memory of `rnnkit train` on word-level corpora of 20 MB and 200 MB: it should not grow with the corpus.

    python benchmarks/corpus_memory.py              # 20 MB and 200 MB
    python benchmarks/corpus_memory.py --sizes 5 50

Each corpus is synthetic: lines of 5-30 words drawn from a Zipf-like vocabulary of 10,000 words. The
word LM (embedding and LSTM of 64, full softmax) trains for 20 steps in its own process, with a token
cache of its own (so the corpus is tokenised in that process), and the peak resident memory of the
process is read from the operating system. The corpus is read line by line into the cache and trained
from a memory map, so the peak should be the same for both sizes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_corpus(path: Path, megabytes: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(10_000)])
    weights = 1.0 / np.arange(1, 10_001)
    weights /= weights.sum()
    target = int(megabytes * 1_000_000)
    with path.open("w", encoding="utf-8") as file:
        written = 0
        while written < target:
            chunk = rng.choice(words, size=200_000, p=weights)
            lengths = rng.integers(5, 31, size=20_000)
            cuts = np.cumsum(lengths)
            lines = [" ".join(chunk[a:b]) for a, b in zip(np.concatenate([[0], cuts[:-1]]), cuts) if b <= len(chunk)]
            text = "\n".join(lines) + "\n"
            file.write(text)
            written += len(text)


def peak_rss_mib(arguments: list[str], cache: Path) -> tuple[float, float]:
    """(peak resident memory in MiB, seconds) of `python -m rnnkit ...` in a child process."""
    script = (
        "import resource, subprocess, sys\n"
        "subprocess.run([sys.executable, '-m', 'rnnkit', *sys.argv[1:]], check=True, stdout=subprocess.DEVNULL,"
        " stderr=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", script, *arguments],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "RNNKIT_CACHE": str(cache)},
    )
    return int(result.stdout.strip()) / 1024, time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[20, 200], metavar="MB")
    args = parser.parse_args()
    settings = [
        "data.tokenizer=word",
        "model.embedding_size=64",
        "model.hidden_size=64",
        "train.eval_every=0",
        "train.batch_size=32",
        "data.window=35",
        "optim.schedule=constant",
    ]
    print(f"{'corpus MB':>9} {'file bytes':>13} {'tokens':>12} {'peak RSS MiB':>13} {'seconds':>8}")
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        valid = directory / "valid.txt"
        write_corpus(valid, 0.2, seed=1)
        for size in args.sizes:
            corpus = directory / f"corpus-{size:g}.txt"
            write_corpus(corpus, size, seed=0)
            run = directory / f"run-{size:g}"
            arguments = [
                "train",
                "--data",
                str(corpus),
                "--val",
                str(valid),
                "--out",
                str(run),
                "--max-steps",
                "20",
                *[a for setting in settings for a in ("--set", setting)],
            ]
            peak, seconds = peak_rss_mib(arguments, directory / f"cache-{size:g}")
            tokens = max(
                np.load(path, mmap_mode="r").shape[0]  # the corpus's (the other cache is validation's)
                for path in (directory / f"cache-{size:g}" / "tokens").glob("*.npy")
            )
            print(f"{size:>9g} {corpus.stat().st_size:>13,} {tokens:>12,} {peak:>13,.0f} {seconds:>8.0f}", flush=True)
            corpus.unlink()


if __name__ == "__main__":
    main()
