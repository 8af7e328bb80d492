"""Random bad input: `--set` assignments, corruptions of a run's saved JSON files, and command-line
flags, drawn from a seeded generator. Every command must end with exit 0, or with exit 2, one error
line on stderr, no traceback, and (for a command on an existing run) the run directory unchanged.

`make test` runs a few dozen cases; the slow test runs many more (`make test-all`)."""

import json
import random
import shutil

import pytest
import torch

from cli_helpers import run_main, tiny_flags
from rnnkit.config import sections, valid_keys
from rnnkit.rundir import CONFIG, VOCABULARY
from rnnkit.tasks.language_model.config import LanguageModelConfig

QUICK_CASES, SLOW_CASES = 36, 400
VALUES = [
    "-1",
    "0",
    "1",
    "2",
    "3",
    "1.5",
    "-0.5",
    "1e309",
    "-1e309",
    "nan",
    "inf",
    "1e-320",
    "true",
    "false",
    '""',
    '"x"',
    "x",
    "lstm",
    "gru",
    "rnn",
    "ifo",
    "oi",
    "[1, 2]",
    "{a = 1}",
    "'",
    '"',
    "99999999999999999999",
    "9223372036854775807",
    "0.999999",
    "1e-9",
    "a\nb",
    "\u00e9\u20ac",
    " ",
    "=",
    "model.cell",
]
JUNK = [None, -1, 0, 1.5, float("nan"), float("inf"), "x", "", [], {}, [1, "a"], {"a": None}, True, 10**30, "\u0000"]


def random_assignment(rng: random.Random) -> str:
    schema = LanguageModelConfig
    section = rng.choice(list(sections(schema)) + ["modle", "task", ""])
    keys = valid_keys(schema, section) if section in sections(schema) else ["cell", "lr"]
    key = rng.choice(keys + ["hiden_size", "name", ""])
    name = section if section == "task" else f"{section}.{key}"
    return f"{name}={rng.choice(VALUES)}" if rng.random() < 0.95 else rng.choice(VALUES)


def mutate(value, rng: random.Random):
    """A random change somewhere inside a JSON value."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        if rng.random() < 0.25:
            del value[key]
        else:
            value[key] = mutate(value[key], rng)
        return value
    if isinstance(value, list) and value and rng.random() < 0.8:
        index = rng.randrange(len(value))
        if rng.random() < 0.25:
            value.append(value[index])  # a duplicate
        else:
            value[index] = mutate(value[index], rng)
        return value
    return rng.choice(JUNK)


def corrupt(run, rng: random.Random) -> None:
    checkpoint = sorted((run / "checkpoints").glob("step-*"))[-1]
    path = rng.choice([run / CONFIG, run / VOCABULARY, checkpoint / "trainer.json", run / "checkpoints" / "latest"])
    text = path.read_text()
    how = rng.random()
    if how < 0.15:
        path.write_text(text[: rng.randrange(len(text))])  # truncated
    elif how < 0.25:
        data = bytearray(text.encode())
        data[rng.randrange(len(data))] = rng.randrange(256)  # one byte changed
        path.write_bytes(bytes(data))
    elif path.name == "latest":
        path.write_text(rng.choice(["", "step-9", "../config.json", "step-00000005/..", "\u00e9"]))
    else:
        path.write_text(json.dumps(mutate(json.loads(text), rng)))


def random_flags(rng: random.Random, run, corpus, out) -> list[str]:
    command = rng.choice(["train", "sample", "eval", "resume", "gradcheck"])
    pool = {
        "train": [
            ["--max-steps", rng.choice(["-1", "0", "1", "x"])],
            ["--max-time", rng.choice(["nan", "-1", "0.5"])],
            ["--seed", rng.choice(["-1", str(2**63), "5"])],
            ["--val", rng.choice(["/dev/null", "/proc", str(corpus)])],
            ["--data", rng.choice(["/dev/null", "/", "", str(corpus)])],
            ["--out", rng.choice(["", "/proc/x", str(run)])],
            ["--max-epochs", rng.choice(["inf", "0.01"])],
            [rng.choice(["PRESET", "nope", "/dev/null", "a.toml"])],
        ],
        "sample": [
            ["--temperature", rng.choice(["nan", "inf", "-1", "1e-320", "0", "2"])],
            ["--top-k", rng.choice(["-3", "0", "2"])],
            ["--top-p", rng.choice(["nan", "0", "1.5", "0.3"])],
            ["--length", rng.choice(["-1", "0", "3"])],
            ["--seed", rng.choice(["-1", str(2**64), "3"])],
            ["--num-samples", rng.choice(["0", "2"])],
            ["--prime", rng.choice(["", "\u20ac\u20ac", "First"])],
            ["--prime-file", rng.choice(["/dev/null", "/proc", str(corpus)])],
            ["--engine", rng.choice(["numpy", "jax"])],
            ["--checkpoint", rng.choice(["best", "latest", "step-1", "../.."])],
            ["--skip-unknown"],
        ],
        "eval": [
            ["--data", rng.choice(["/dev/null", "/proc", "", str(corpus)])],
            ["--checkpoint", rng.choice(["best", "x"])],
        ],
        "resume": [["--max-steps", rng.choice(["-1", "7", "x"])], ["--set", random_assignment(rng)], ["--seed", "1"]],
        "gradcheck": [["--tolerance", rng.choice(["nan", "-1", "0"])], ["--seed", rng.choice(["-1", str(2**63)])]],
    }[command]
    flags = [flag for group in rng.sample(pool, k=rng.randint(1, min(3, len(pool)))) for flag in group]
    if command == "train":
        base = ["train", "--data", str(corpus), "--out", str(out), "--max-steps", "1", *tiny_flags()]
        return [*base, *[flag for flag in flags if flag != "PRESET"]]
    if command == "resume":
        return ["train", "--resume", str(run), "--max-steps", "6", *flags]
    if command == "gradcheck":
        return ["gradcheck", *flags]
    return [command, str(run), *(["--length", "3"] if command == "sample" else []), *flags]


def snapshot(directory):
    return {path: path.read_bytes() for path in directory.rglob("*") if path.is_file() and path.name != "lock"}


def check_case(capsys, argv, run=None) -> None:
    before = snapshot(run) if run is not None else None
    threads = torch.get_num_threads()
    try:
        code = run_main(argv)
    finally:
        torch.set_num_threads(threads)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err, (argv, captured.err)
    assert code in (0, 2), (argv, code, captured.err)
    if code == 2:
        errors = [line for line in captured.err.splitlines() if ": error: " in line]
        assert len(errors) == 1 and errors[0] == captured.err.strip().splitlines()[-1], (argv, captured.err)
        if argv[0] != "train" or "--resume" in argv:
            assert len(captured.err.strip().splitlines()) == 1, (argv, captured.err)
        if before is not None:
            assert snapshot(run) == before, (argv, "the run directory changed")


def fuzz(capsys, trained, tmp_path, cases: int, seed: int) -> None:
    rng = random.Random(seed)
    for case in range(cases):
        run = shutil.copytree(trained[0], tmp_path / f"run-{case}")
        kind = case % 3
        if kind == 0:
            settings = [arg for _ in range(rng.randint(1, 3)) for arg in ("--set", random_assignment(rng))]
            argv = [
                "train",
                "--data",
                str(trained[1]),
                "--out",
                str(tmp_path / f"out-{case}"),
                "--max-steps",
                "1",
                *tiny_flags(),
                *settings,
            ]
            check_case(capsys, argv)
        elif kind == 1:
            corrupt(run, rng)
            argv = rng.choice(
                [
                    ["eval", str(run)],
                    ["sample", str(run), "--length", "5"],
                    ["sample", str(run), "--length", "5", "--engine", "numpy"],
                    ["train", "--resume", str(run), "--max-steps", "6"],
                ]
            )
            check_case(capsys, argv, run)
        else:
            argv = random_flags(rng, run, trained[1], tmp_path / f"out-{case}")
            check_case(capsys, argv, run if argv[0] != "gradcheck" and "--out" not in argv else None)
        shutil.rmtree(run, ignore_errors=True)


def test_fuzz_quick(capsys, trained, tmp_path):
    fuzz(capsys, trained, tmp_path, QUICK_CASES, seed=0)


@pytest.mark.slow
def test_fuzz_many(capsys, trained, tmp_path):
    fuzz(capsys, trained, tmp_path, SLOW_CASES, seed=1)
