"""A long-run soak: the default char LM, made tiny, trained for many steps with a checkpoint every 50
steps and validation every 500, watched from outside. Every 1,000 steps it records the trainer's
resident memory (RSS), its open file descriptors and the size of the run's checkpoint directory.

    python benchmarks/soak.py                       # 20,000 steps
    python benchmarks/soak.py --steps 5000 --threads 1

It passes when, after the first `--warm-up` steps, the RSS stays within 5% of its value there, the
open descriptors never change, and the checkpoint directory stays bounded: it never keeps more than
`latest` and `best`, and it is no larger in the second half of the measurements than in the first.
It prints the table and the verdict, and exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rnnkit.metrics_log import read_metrics

TINY = {
    "model.embedding_size": 16,
    "model.hidden_size": 32,
    "train.batch_size": 8,
    "data.window": 32,
    "train.log_every": 50,
    "train.checkpoint_every": 1e9,  # only by steps, below
    "train.max_time": 0,  # the preset's time limit lifted: --steps decides
    "sample.every": 1000,
}


def resident_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def open_descriptors(pid: int) -> int:
    """The fewest of a few looks 10 ms apart: a file open for a moment (a checkpoint being written) is not
    a leak; one that stays open is."""
    counts = []
    for _ in range(5):
        counts.append(len(os.listdir(f"/proc/{pid}/fd")))
        time.sleep(0.01)
    return min(counts)


def directory_bytes(path: Path) -> tuple[int, int]:
    """(bytes of every file under path, number of checkpoints in it)."""
    total, checkpoints = 0, 0
    for root, directories, files in os.walk(path):
        checkpoints += sum(name.startswith("step-") for name in directories) if Path(root) == path else 0
        for name in files:
            try:
                total += os.stat(Path(root) / name).st_size
            except FileNotFoundError:
                pass  # pruned while we looked
    return total, checkpoints


def last_step(run: Path) -> int:
    records = read_metrics(run / "metrics.jsonl", "train")
    return records[-1]["step"] if records else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20_000, help="training steps (default 20000)")
    parser.add_argument("--every", type=int, default=1_000, help="steps between measurements (default 1000)")
    parser.add_argument("--warm-up", type=int, default=2_000, help="steps before the baseline (default 2000)")
    parser.add_argument("--checkpoint-steps", type=int, default=50, help="steps between checkpoints (default 50)")
    parser.add_argument("--eval-every", type=int, default=500, help="steps between validations (default 500)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    settings = {
        **TINY,
        "train.checkpoint_steps": args.checkpoint_steps,
        "train.eval_every": args.eval_every,
        "train.threads": args.threads,
    }
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        run = Path(scratch) / "run"
        command = [sys.executable, "-m", "rnnkit", "train", "--out", str(run), "--max-steps", str(args.steps)]
        command += [part for key, value in settings.items() for part in ("--set", f"{key}={value}")]
        started = time.monotonic()
        trainer = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        next_mark = args.every
        while trainer.poll() is None:
            step = last_step(run) if (run / "metrics.jsonl").exists() else 0
            if step >= next_mark:
                size, checkpoints = directory_bytes(run / "checkpoints")
                rows.append(
                    {
                        "step": step,
                        "seconds": time.monotonic() - started,
                        "rss_mib": resident_kib(trainer.pid) / 1024,
                        "descriptors": open_descriptors(trainer.pid),
                        "checkpoint_mib": size / 2**20,
                        "checkpoints": checkpoints,
                    }
                )
                next_mark = (step // args.every + 1) * args.every
            time.sleep(0.05)
        if trainer.returncode != 0:
            print(f"soak: training failed with exit code {trainer.returncode}", file=sys.stderr)
            return 1
        saved = len(read_metrics(run / "metrics.jsonl", "checkpoint"))
    print("| step | seconds | RSS (MiB) | open descriptors | checkpoint directory (MiB) | checkpoints kept |")
    print("|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['step']:,} | {row['seconds']:.0f} | {row['rss_mib']:.1f} | {row['descriptors']} | "
            f"{row['checkpoint_mib']:.2f} | {row['checkpoints']} |"
        )
    after = [row for row in rows if row["step"] >= args.warm_up]
    if not after:
        print("soak: no measurement after warm-up; train longer", file=sys.stderr)
        return 1
    base = after[0]
    drift = max(abs(row["rss_mib"] - base["rss_mib"]) / base["rss_mib"] for row in after)
    descriptors = sorted({row["descriptors"] for row in after})
    half = len(after) // 2 or 1
    first, second = (max(row["checkpoint_mib"] for row in part or after) for part in (after[:half], after[half:]))
    kept = max(row["checkpoints"] for row in rows)
    checks = {
        f"RSS within 5% after step {base['step']:,} (largest drift {100 * drift:.1f}%)": drift <= 0.05,
        f"open descriptors constant ({', '.join(map(str, descriptors))})": len(descriptors) == 1,
        f"checkpoint directory bounded: at most {kept} checkpoints (latest and best), largest {second:.2f} MiB "
        f"in the second half after warm-up, {first:.2f} in the first": kept <= 2 and second <= 1.05 * first,
    }
    print(f"\n{saved} checkpoints saved in {args.steps:,} steps.")
    for check, passed in checks.items():
        print(f"{'pass' if passed else 'FAIL'}: {check}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
