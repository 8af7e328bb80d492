"""Peak memory of `rnnkit sample` with a 1 MB prime, on both engines, against a one-line prime.

    python benchmarks/prime_memory.py            # 1 MB of tinyshakespeare as the prime
    python benchmarks/prime_memory.py --mb 4

The default preset's model (LSTM 256) is trained for a few steps into a temporary run directory;
then each engine samples 10 characters after a short prime and after the large one, each in its own
process, and the peak resident memory of that process is read from the operating system. The prime is
fed to the model in windows with the state carried, so the large prime should cost little more than
the short one (the text itself, its token ids and the output it is echoed to).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from rnnkit.data.text import read_text, resolve_corpus


def peak_rss_mib(arguments: list[str]) -> float:
    """Run `python -m rnnkit ...` in a child process; its peak resident set size in MiB."""
    script = (
        "import resource, subprocess, sys\n"
        "subprocess.run([sys.executable, '-m', 'rnnkit', *sys.argv[1:]], check=True, stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, *arguments], capture_output=True, text=True, check=True)
    return int(result.stdout.strip()) / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=1.0, help="size of the large prime in MB (default 1)")
    args = parser.parse_args()
    text = read_text(resolve_corpus("tinyshakespeare"))
    size = int(args.mb * 1_000_000)
    large = (text * (size // len(text) + 1))[:size]
    with tempfile.TemporaryDirectory() as directory:
        run, prime = Path(directory) / "run", Path(directory) / "prime.txt"
        prime.write_text(large, encoding="utf-8")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "rnnkit",
                "train",
                "--out",
                str(run),
                "--max-steps",
                "3",
                "--set",
                "train.eval_every=0",
            ],
            check=True,
            capture_output=True,
        )
        print(f"prime of {len(large):,} characters; peak resident memory of `rnnkit sample ... --length 10`")
        print(
            f"{'engine':<8} {'short prime MiB':>16} {'1 MB prime MiB' if args.mb == 1 else 'large prime MiB':>16} "
            f"{'ratio':>6}"
        )
        for engine in ("torch", "numpy"):
            base = ["sample", str(run), "--length", "10", "--engine", engine, "--temperature", "0"]
            short = peak_rss_mib([*base, "--prime", "ROMEO:"])
            long = peak_rss_mib([*base, "--prime-file", str(prime)])
            print(f"{engine:<8} {short:>16,.0f} {long:>16,.0f} {long / short:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
