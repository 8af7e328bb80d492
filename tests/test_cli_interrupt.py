"""Real signals: Ctrl-C saves a checkpoint and exits cleanly; kill -9 leaves the last checkpoint loadable."""

import json
import signal
import time

from cli_helpers import rnnkit_process, run_rnnkit, tiny_flags
from language_model_helpers import assert_identical_tensors, latest_tensors, read_metrics, write_tiny_corpus
from rnnkit.rundir import RunDirectory

STEPS = 800


def train_arguments(corpus, run, *more):
    return [
        "train",
        "--data",
        str(corpus),
        "--out",
        str(run),
        "--max-steps",
        str(STEPS),
        *tiny_flags(),
        "--set",
        "optim.schedule=cosine",
        "--set",
        "model.dropout=0.1",
        *more,
    ]


def wait_for_checkpoint_after_step_zero(run, process, timeout=60.0) -> None:
    deadline = time.monotonic() + timeout
    pointer = run / "checkpoints" / "latest"
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        if pointer.exists() and pointer.read_text().strip() not in ("", "step-00000000"):
            return
        time.sleep(0.02)
    raise AssertionError("no checkpoint after step 0 appeared")


def test_ctrl_c_saves_and_resume_finishes_bit_identical(tmp_path):
    corpus = write_tiny_corpus(tmp_path)
    straight = rnnkit_process(*train_arguments(corpus, tmp_path / "straight"))
    interrupted = rnnkit_process(*train_arguments(corpus, tmp_path / "run", "--set", "train.checkpoint_every=0.2"))
    wait_for_checkpoint_after_step_zero(tmp_path / "run", interrupted)
    interrupted.send_signal(signal.SIGINT)
    _, stderr = interrupted.communicate(timeout=60)
    assert interrupted.returncode == 130, stderr
    assert "checkpoint saved" in stderr and "--resume" in stderr and "Traceback" not in stderr
    end = [r for r in read_metrics(tmp_path / "run") if r["event"] == "end"][-1]
    assert end["reason"] == "interrupted" and 0 < end["step"] < STEPS
    assert RunDirectory(tmp_path / "run").latest_checkpoint().name == f"step-{end['step']:08d}"

    resumed = run_rnnkit("train", "--resume", str(tmp_path / "run"))
    assert resumed.returncode == 0, resumed.stderr
    assert straight.wait(timeout=120) == 0
    assert_identical_tensors(latest_tensors(tmp_path / "straight"), latest_tensors(tmp_path / "run"))


def test_kill_9_leaves_the_last_checkpoint_loadable(tmp_path):
    corpus = write_tiny_corpus(tmp_path)
    run = tmp_path / "run"
    process = rnnkit_process(*train_arguments(corpus, run, "--set", "train.checkpoint_every=0.01"))
    wait_for_checkpoint_after_step_zero(run, process)
    time.sleep(0.3)  # checkpoints are being written continuously: the kill lands at an arbitrary moment
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL

    evaluated = run_rnnkit("eval", str(run))
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["tokens"] > 0
    resumed = run_rnnkit("train", "--resume", str(run), "--max-steps", str(STEPS), "--set", "train.checkpoint_every=30")
    assert resumed.returncode == 0, resumed.stderr
    assert f"stopped at step {STEPS}" in resumed.stderr
    assert all(
        name.startswith("step-") or name == "latest" for name in (path.name for path in (run / "checkpoints").iterdir())
    )
