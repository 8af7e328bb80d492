"""The code's form is checked like its behaviour: `ruff check` (pyflakes, pycodestyle, import order) and
`ruff format --check`, with the settings of pyproject.toml (lines of at most 120 characters)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("arguments", [["check", "."], ["format", "--check", "."]], ids=["check", "format"])
def test_ruff_passes(arguments):
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
