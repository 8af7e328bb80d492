"""Running the `rnnkit` command in tests: in this process (fast) or as `python -m rnnkit` (real exit codes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from language_model_helpers import TINY_SETTINGS
from rnnkit.cli import main

SOURCE = Path(__file__).resolve().parents[1] / "src"


def tiny_flags() -> list[str]:
    return [argument for setting in TINY_SETTINGS for argument in ("--set", setting)]


def run_main(argv: list[str]) -> int:
    """main(argv) as the console script would run it, argparse's own exits included."""
    try:
        return main(argv)
    except SystemExit as exit:
        return exit.code


def assert_usage_error(capsys, argv: list[str], *fragments: str) -> str:
    """Exit code 2, exactly one line on stderr containing every fragment, no traceback."""
    code = run_main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, f"exit code {code}; stderr: {captured.err}"
    assert len(lines) == 1, f"expected one line on stderr, got: {captured.err!r}"
    assert "Traceback" not in captured.err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def rnnkit_process(*arguments: str, **options) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(SOURCE), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "rnnkit", *arguments],
        env=environment,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **options,
    )


def run_rnnkit(*arguments: str, timeout: float = 120) -> subprocess.CompletedProcess:
    process = rnnkit_process(*arguments)
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
from rnnkit.cli import main
code = main(sys.argv[1:])
loaded = sorted(name for name, module in sys.modules.items() if module is not None and name.split(".")[0] == "torch")
assert not loaded, loaded
sys.exit(code)
"""


def sample_without_torch(*arguments: str) -> subprocess.CompletedProcess:
    return rnnkit_without_torch("sample", *arguments)


def rnnkit_without_torch(*arguments: str) -> subprocess.CompletedProcess:
    """`rnnkit ARGUMENTS` in a process where any `import torch` fails (and that checks none happened)."""
    environment = {**os.environ, "PYTHONPATH": str(SOURCE)}
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH, *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
