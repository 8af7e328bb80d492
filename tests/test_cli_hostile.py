"""Careless and hostile use of the command line: every case is one line on stderr, exit 2, no
traceback, and nothing already saved is changed. (The fuzz test draws many more at random.)"""

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from cli_helpers import SOURCE, assert_usage_error, rnnkit_process, run_main, run_rnnkit, tiny_flags
from language_model_helpers import read_metrics
from rnnkit.rundir import CONFIG, MODEL_WEIGHTS, VOCABULARY, RunDirectory


def snapshot(directory):
    return {path: path.read_bytes() for path in directory.rglob("*") if path.is_file()}


def test_threads_seeds_and_gradcheck_limits(capsys, trained, tmp_path):
    base = ["train", "--data", str(trained[1]), "--out", str(tmp_path / "out"), *tiny_flags()]
    assert_usage_error(capsys, [*base, "--set", "train.threads=20000"], "train.threads: expected 0")
    assert_usage_error(capsys, [*base, "--seed", str(2**63)], "--seed must be an integer in [0, 2^63)")
    assert_usage_error(capsys, [*base, "--max-time", "inf"], "train.max_time: expected a finite number")
    assert_usage_error(
        capsys,
        [*base, "--set", "model.cell=gru", "--set", "model.peephole=true"],
        "model.peephole = True does not apply to model.cell = 'gru'",
    )
    assert_usage_error(capsys, ["gradcheck", "--tolerance", "nan"], "--tolerance must be a finite number > 0")
    assert_usage_error(capsys, ["gradcheck", "--tolerance", "0"], "--tolerance must be a finite number > 0")
    assert_usage_error(capsys, ["gradcheck", "--seed", "-1"], "--seed must be an integer in [0, 2^63)")
    assert not (tmp_path / "out").exists()


def test_utf16_corpus_and_bom_preset(capsys, tmp_path):
    corpus = tmp_path / "utf16.txt"
    corpus.write_text("First Citizen: hello\n" * 20, encoding="utf-16")
    assert_usage_error(
        capsys,
        ["train", "--data", str(corpus), "--out", str(tmp_path / "out"), *tiny_flags()],
        "looks like UTF-16 text; convert it to UTF-8",
    )


@pytest.mark.parametrize(
    "damage, fragments",
    [
        (lambda v: v["tokens"].append(v["tokens"][0]), ["the token list contains duplicates"]),
        (lambda v: v["tokens"].__setitem__(0, 7), ["'tokens' must be a list of strings"]),
        (lambda v: v["tokens"].__setitem__(0, "ab"), ["a character vocabulary holds single characters, not 'ab'"]),
        (lambda v: v.__setitem__("tokenizer", "bytes"), ["unknown tokenizer 'bytes'"]),
    ],
)
@pytest.mark.parametrize("command", [["eval"], ["sample", "--engine", "numpy"], ["train", "--resume"]])
@pytest.mark.parametrize("fingerprinted", [True, False], ids=["checkpoint", "older checkpoint"])
def test_a_damaged_vocabulary(capsys, run_copy, damage, fragments, command, fingerprinted):
    """A checkpoint fingerprints the run's files, so an edit is named as such; a checkpoint written before
    fingerprints existed meets the vocabulary's own checks."""
    if not fingerprinted:
        state = RunDirectory(run_copy).latest_checkpoint() / "trainer.json"
        state.write_text(json.dumps({k: v for k, v in json.loads(state.read_text()).items() if k != "files"}))
        (RunDirectory(run_copy).checkpoints_path / "best").unlink(missing_ok=True)
    vocabulary = json.loads((run_copy / VOCABULARY).read_text())
    damage(vocabulary)
    (run_copy / VOCABULARY).write_text(json.dumps(vocabulary))
    before = snapshot(run_copy)
    argv = [*command[:1], str(run_copy), *command[1:]] if command[0] != "train" else [*command, str(run_copy)]
    expected = fragments if not fingerprinted else ["changed after", "was saved"]
    assert_usage_error(capsys, argv, VOCABULARY, *expected)
    assert snapshot(run_copy) == before


def rewrite_weights(run, change):
    path = RunDirectory(run).latest_checkpoint() / MODEL_WEIGHTS
    weights = load_file(str(path))
    change(weights)
    save_file(weights, str(path))


@pytest.mark.parametrize(
    "change, fragments",
    [
        (lambda w: w["decoder.weight"].__setitem__((0, 0), np.nan), ["non-finite weights in decoder.weight"]),
        (
            lambda w: w.__setitem__("decoder.weight", np.ascontiguousarray(w["decoder.weight"].T)),
            ["decoder.weight has shape"],
        ),
        (
            lambda w: w.__setitem__("embedding.weight", w["embedding.weight"][:-1].copy()),
            ["embedding.weight has shape"],
        ),
    ],
)
@pytest.mark.parametrize("engine", ["torch", "numpy"])
def test_weights_that_do_not_fit_print_nothing_but_one_line(capsys, run_copy, change, fragments, engine):
    rewrite_weights(run_copy, change)
    assert_usage_error(capsys, ["sample", str(run_copy), "--engine", engine, "--prime", "First"], *fragments)
    assert capsys.readouterr().out == ""  # not even the prime was printed


def test_eval_refuses_non_finite_weights(capsys, run_copy):
    rewrite_weights(run_copy, lambda w: w["rnn.weight_hh_l0"].__setitem__((1, 1), np.inf))
    assert_usage_error(capsys, ["eval", str(run_copy)], "non-finite weights in rnn.weight_hh_l0")


def test_a_damaged_trainer_state_is_refused_by_resume(capsys, run_copy):
    state = RunDirectory(run_copy).latest_checkpoint() / "trainer.json"
    record = json.loads(state.read_text())
    record["lr_scale"] = float("nan")
    state.write_text(json.dumps(record))
    before = snapshot(run_copy)
    assert_usage_error(capsys, ["train", "--resume", str(run_copy)], "lr_scale must be a finite number > 0, got NaN")
    assert snapshot(run_copy) == before


def test_a_command_that_does_not_fit_the_run_s_task(capsys, tmp_path, monkeypatch):
    from rnnkit import tasks

    monkeypatch.setitem(tasks.TASK_PACKAGES, "echo", "echo_task")
    run = tmp_path / "echo-run"
    (run / "checkpoints" / "step-00000001").mkdir(parents=True)
    (run / "checkpoints" / "latest").write_text("step-00000001\n")
    (run / CONFIG).write_text(json.dumps({"task": "echo"}))
    assert run_main(["eval", str(run)]) == 0
    assert json.loads(capsys.readouterr().out) == {"answer": 42.0, "checkpoint": "step-00000001", "nan": None}
    assert_usage_error(
        capsys,
        ["sample", str(run)],
        "is a test task that answers run",
        "`rnnkit sample` does not apply to it (it has: train, eval)",
    )


def test_a_large_prime_is_fed_in_bounded_windows_on_both_engines(capsys, trained, tmp_path, monkeypatch):
    from rnnkit.generate import FEED_WINDOW
    from rnnkit.tasks import language_model

    prime = tmp_path / "prime.txt"
    text = (trained[1].read_text() * 8)[:30000]
    prime.write_text(text)
    fed = []
    original = language_model.step_function

    def spying_step_function(*args):
        step = original(*args)

        def spy(ids, state):
            fed.append(len(ids))
            return step(ids, state)

        return spy

    monkeypatch.setattr(language_model, "step_function", spying_step_function)
    for engine in ("torch", "numpy"):
        fed.clear()
        assert (
            run_main(
                [
                    "sample",
                    str(trained[0]),
                    "--prime-file",
                    str(prime),
                    "--length",
                    "5",
                    "--engine",
                    engine,
                    "--temperature",
                    "0",
                ]
            )
            == 0
        )
        assert capsys.readouterr().out.startswith(text[:1000])
        assert sum(fed) == len(text) + 5 - 1 and max(fed) == FEED_WINDOW


def test_characters_stdout_cannot_encode_become_question_marks(trained):
    environment = {**os.environ, "PYTHONPATH": str(SOURCE), "PYTHONIOENCODING": "ascii"}
    result = subprocess.run(
        [sys.executable, "-m", "rnnkit", "sample", str(trained[0]), "--prime", "First", "--length", "0"],
        env=environment,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0 and result.stdout == b"First\n" and result.stderr == b""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rnnkit",
            "sample",
            str(trained[0]),
            "--prime",
            "Fïrst",
            "--skip-unknown",
            "--length",
            "3",
            "--seed",
            "1",
        ],
        env=environment,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0 and result.stdout.startswith(b"F?rst") and b"Traceback" not in result.stderr


def test_two_trainers_on_one_run_the_second_fails_at_once(trained, tmp_path):
    run = shutil.copytree(trained[0], tmp_path / "run")
    first = rnnkit_process("train", "--resume", str(run), "--max-steps", "100000")
    deadline = time.monotonic() + 60
    while not any(r["event"] == "resume" for r in read_metrics(run)[-3:]) and time.monotonic() < deadline:
        assert first.poll() is None
        time.sleep(0.05)
    second = run_rnnkit("train", "--resume", str(run), "--max-steps", "100000", timeout=60)
    assert second.returncode == 2
    assert second.stderr.strip().splitlines() == [
        f"rnnkit train: error: {run}: another rnnkit process (pid {first.pid}) is training this run; "
        "wait for it to finish or stop it"
    ]
    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 128 + signal.SIGTERM
    assert "stopped by SIGTERM at step" in stderr and "checkpoint saved" in stderr and "Traceback" not in stderr
    end = [r for r in read_metrics(run) if r["event"] == "end"][-1]
    assert end["reason"] == "interrupted"
    assert RunDirectory(run).latest_checkpoint().name == f"step-{end['step']:08d}"


def test_a_file_size_limit_during_training_is_one_line_and_keeps_the_last_checkpoint(trained, tmp_path):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))  # more than a checkpoint file, less than the log

    run = tmp_path / "run"
    arguments = [
        "train",
        "--data",
        str(trained[1]),
        "--out",
        str(run),
        "--max-steps",
        "100000",
        *tiny_flags(),
        "--set",
        "train.log_every=1",
        "--set",
        "train.checkpoint_every=0.05",
    ]
    process = rnnkit_process(*arguments, preexec_fn=limit)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 2, stderr
    assert (
        stderr.strip().splitlines()[-1] == f"rnnkit train: error: cannot write {run / 'metrics.jsonl'}: File too large"
    )
    evaluated = run_rnnkit("eval", str(run))
    assert evaluated.returncode == 0 and json.loads(evaluated.stdout)["tokens"] > 0
