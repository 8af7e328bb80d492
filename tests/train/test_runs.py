"""The run lifecycle: a run directory is created whole, best/latest/kept checkpoints, patience,
pruning, the lock, and runs that an older version or a crash left behind."""

import io
import json
import os
import shutil
import signal

import pytest

from cli_helpers import assert_usage_error, rnnkit_process, run_main
from language_model_helpers import read_metrics, tiny_config, train_tiny_run, write_tiny_corpus
from rnnkit import runs
from rnnkit.errors import UsageError
from rnnkit.rundir import BEST, CONFIG, LATEST, LOCK, VOCABULARY, RunDirectory
from rnnkit.runs import STAGING_PREFIX, check_new_run_path, open_run, resume_run, start_run


def quiet_start(config, path):
    return start_run(config, str(path), progress_stream=io.StringIO())


def test_a_new_run_appears_whole_with_its_first_checkpoint(tmp_path):
    corpus = write_tiny_corpus(tmp_path)
    trainer = quiet_start(tiny_config(corpus, "train.max_steps=2"), tmp_path / "run")
    run = tmp_path / "run"
    assert sorted(entry.name for entry in run.iterdir()) == sorted([CONFIG, "checkpoints", LOCK, "vocabulary.json"])
    assert RunDirectory(run).latest_checkpoint().name == "step-00000000"
    assert not [entry for entry in tmp_path.iterdir() if entry.name.startswith(STAGING_PREFIX)]
    assert json.loads((run / CONFIG).read_text())["task"] == "language_model"
    assert trainer.run() == "max_steps"


@pytest.mark.parametrize("stage", ["save", "checkpoint", "publish"])
def test_a_failure_while_assembling_leaves_nothing(tmp_path, monkeypatch, stage):
    corpus = write_tiny_corpus(tmp_path)

    def fail(*args, **kwargs):
        raise UsageError(f"cannot write: simulated failure at {stage}")

    if stage == "checkpoint":
        from rnnkit.train.trainer import Trainer

        monkeypatch.setattr(Trainer, "save_checkpoint", fail)
    elif stage == "save":
        monkeypatch.setattr(type(runs.get_task("language_model")), "save", staticmethod(fail))
    else:
        monkeypatch.setattr(runs, "publish", fail)
    with pytest.raises(UsageError, match="simulated failure"):
        quiet_start(tiny_config(corpus), tmp_path / "run")
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["tiny.txt"]


def test_best_checkpoint_is_the_best_validation_and_eval_uses_it(tmp_path):
    corpus = write_tiny_corpus(tmp_path)
    run = train_tiny_run(
        tmp_path / "run",
        corpus,
        "train.max_steps=30",
        "train.eval_every=5",
        "train.keep_checkpoints=100",
        "optim.lr=0.05",
        "optim.schedule=cosine",
    )
    evaluations = [record for record in read_metrics(run) if record["event"] == "eval"]
    best = min(evaluations, key=lambda record: record["nll"])
    directory = RunDirectory(run)
    assert directory.checkpoint(BEST).name == f"step-{best['step']:08d}"
    assert directory.checkpoint() == directory.checkpoint(BEST) and directory.checkpoint(LATEST).name == "step-00000030"
    opened = open_run(run)
    on_best = opened.task.evaluate(opened, directory.checkpoint(), None)
    on_latest = opened.task.evaluate(opened, directory.checkpoint(LATEST), None)
    assert on_best != on_latest or best["step"] == 30
    with pytest.raises(UsageError, match="--checkpoint 'step-9': expected latest, best or one of the kept"):
        directory.checkpoint("step-9")


def test_patience_stops_after_evaluations_without_a_new_best(tmp_path, monkeypatch):
    corpus = write_tiny_corpus(tmp_path)
    trainer = quiet_start(
        tiny_config(corpus, "train.max_steps=100", "train.eval_every=2", "train.patience=3"), tmp_path / "run"
    )
    values = iter([5.0, 4.0, 4.5, 4.0, 4.2, 1.0])
    monkeypatch.setattr(trainer.training, "validate", lambda: {"loss": (value := next(values)), "nll": value})
    assert trainer.run() == "patience"
    assert trainer.step == 10  # best at step 4, then 6, 8 and 10 did not beat it
    assert RunDirectory(tmp_path / "run").checkpoint(BEST).name == "step-00000004"


def test_pruning_keeps_latest_best_the_newest_and_every_kth(tmp_path):
    corpus = write_tiny_corpus(tmp_path)
    run = train_tiny_run(
        tmp_path / "run",
        corpus,
        "train.max_steps=23",
        "train.keep_every=10",
        "train.keep_checkpoints=2",
        "train.checkpoint_every=1e-9",
    )
    kept = sorted(entry.name for entry in (run / "checkpoints").iterdir())
    assert kept == [
        LATEST,
        "step-00000000",
        "step-00000010",
        "step-00000020",
        "step-00000021",
        "step-00000022",
        "step-00000023",
    ]


def test_checkpoint_steps_saves_every_nth_step_and_prunes_them(tmp_path):
    corpus = write_tiny_corpus(tmp_path)
    run = train_tiny_run(
        tmp_path / "run", corpus, "train.max_steps=23", "train.checkpoint_steps=5", "train.keep_checkpoints=1"
    )
    saved = [record["step"] for record in read_metrics(run) if record["event"] == "checkpoint"]
    assert saved == [5, 10, 15, 20, 23]  # the step-0 checkpoint is written before training (no record)
    kept = sorted(entry.name for entry in (run / "checkpoints").iterdir())
    assert kept == [LATEST, "step-00000020", "step-00000023"]


def test_resume_of_a_run_without_checkpoint_starts_it_from_step_zero(tmp_path):
    corpus = write_tiny_corpus(tmp_path)
    straight = train_tiny_run(tmp_path / "straight", corpus, "train.max_steps=4")
    dead_end = tmp_path / "dead-end"  # what a crash between config.json and the first checkpoint left (before)
    shutil.copytree(straight, dead_end)
    shutil.rmtree(dead_end / "checkpoints")
    (dead_end / "metrics.jsonl").unlink()
    trainer = resume_run(dead_end, {}, progress_stream=io.StringIO())
    assert trainer.step == 0 and trainer.run(resumed=True) == "max_steps"
    from language_model_helpers import assert_identical_tensors, latest_tensors

    assert_identical_tensors(latest_tensors(straight), latest_tensors(dead_end))


def test_a_run_from_before_tasks_still_loads(tmp_path):
    corpus = write_tiny_corpus(tmp_path)
    run = train_tiny_run(tmp_path / "run", corpus, "train.max_steps=3", "data.window=5")
    record = json.loads((run / CONFIG).read_text())
    del record["task"]
    record["train"]["window"] = record["data"].pop("window")
    (run / CONFIG).write_text(json.dumps(record))
    opened = open_run(run)
    assert opened.task.name == "language_model" and opened.config.data.window == 5
    assert resume_run(run, {"train.max_steps": 4}, progress_stream=io.StringIO()).run(resumed=True) == "max_steps"


def test_a_second_trainer_of_the_same_run_is_refused_at_once(tmp_path):
    corpus = write_tiny_corpus(tmp_path)
    trainer = quiet_start(tiny_config(corpus, "train.max_steps=2"), tmp_path / "run")
    with pytest.raises(UsageError, match=rf"another rnnkit process \(pid {os.getpid()}\) is training this run"):
        resume_run(tmp_path / "run", {})
    trainer.run()  # releases the lock
    resume_run(tmp_path / "run", {}).lock.release()


@pytest.mark.parametrize("place", ["run", "run/checkpoints", "run/checkpoints/step-00000000/deeper"])
def test_out_inside_a_run_is_refused(tmp_path, place):
    corpus = write_tiny_corpus(tmp_path)
    train_tiny_run(tmp_path / "run", corpus, "train.max_steps=1")
    message = "already holds a run" if place == "run" else "is inside the run directory"
    with pytest.raises(UsageError, match=message):
        check_new_run_path(str(tmp_path / place))


@pytest.mark.parametrize(
    "out, message",
    [
        ("", "the path is empty"),
        ("afile.txt/run", "afile.txt is not a directory"),
        ("loop/run", "Too many levels of symbolic links"),
        ("x" * 300, "File name too long"),
        ("/proc/rnnkit-run", "No such file or directory|Permission denied|Read-only"),
    ],
)
def test_impossible_out_paths_are_one_line(tmp_path, monkeypatch, out, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile.txt").write_text("x")
    os.symlink("loop", tmp_path / "loop")
    corpus = write_tiny_corpus(tmp_path)
    with pytest.raises(UsageError, match=message):
        quiet_start(tiny_config(corpus), out)
    assert not [entry for entry in tmp_path.iterdir() if entry.name.startswith(STAGING_PREFIX)]


def test_a_model_too_large_for_the_machine_is_one_line(tmp_path):
    corpus = write_tiny_corpus(tmp_path)
    with pytest.raises(UsageError, match=r"the model is too large: [\d,]+ parameters need about [\d,.]+ GiB"):
        quiet_start(tiny_config(corpus, "model.hidden_size=1000000"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"data": {"window": 4}}, r"was changed after step-00000003 was saved: data.window \(8 -> 4\)"),
        ({"train": {"batch_size": 2}}, r"train.batch_size \(4 -> 2\)"),
        ({"model": {"hidden_size": 12}}, r"model.hidden_size \(16 -> 12\)"),
    ],
)
def test_a_config_edited_after_training_is_refused_on_resume(tmp_path, edit, message):
    corpus = write_tiny_corpus(tmp_path)
    run = train_tiny_run(tmp_path / "run", corpus, "train.max_steps=3")
    record = json.loads((run / CONFIG).read_text())
    for section, values in edit.items():
        record[section].update(values)
    (run / CONFIG).write_text(json.dumps(record))
    with pytest.raises(UsageError, match=message):
        resume_run(run, {})
    record["model"]["hidden_size"] = 12
    (run / CONFIG).write_text(json.dumps(record))
    opened = open_run(run)  # evaluation has no trainer state to compare: the weights name what differs
    with pytest.raises(UsageError, match=r"rnn.weight_ih_l0 has shape \(64, 8\), the config makes \(48, 8\)"):
        opened.task.evaluate(opened, opened.directory.checkpoint(), None)


@pytest.mark.parametrize(
    "command", [["eval"], ["sample", "--length", "5"], ["sample", "--length", "5", "--engine", "numpy"], ["score"]]
)
def test_reading_commands_refuse_a_config_edited_after_training(tmp_path, capsys, command, monkeypatch):
    corpus = write_tiny_corpus(tmp_path)
    run = train_tiny_run(tmp_path / "run", corpus, "train.max_steps=3")
    record = json.loads((run / CONFIG).read_text())
    record["data"]["window"] = 4
    (run / CONFIG).write_text(json.dumps(record))
    monkeypatch.setattr("sys.stdin", io.StringIO("First Citizen:\n"))
    assert_usage_error(
        capsys, [command[0], str(run), *command[1:]], "config.json was changed after", "data.window (8 -> 4)"
    )
    record["data"]["window"], record["sample"]["length"] = 8, 7  # what sampling may change, as a resume may
    (run / CONFIG).write_text(json.dumps(record))
    monkeypatch.setattr("sys.stdin", io.StringIO("First Citizen:\n"))
    assert run_main([command[0], str(run), *command[1:]]) == 0


def test_a_task_file_edited_after_training_is_refused(tmp_path, capsys):
    corpus = write_tiny_corpus(tmp_path)
    run = train_tiny_run(tmp_path / "run", corpus, "train.max_steps=3")
    vocabulary = json.loads((run / VOCABULARY).read_text())
    vocabulary["tokens"][1], vocabulary["tokens"][2] = vocabulary["tokens"][2], vocabulary["tokens"][1]
    (run / VOCABULARY).write_text(json.dumps(vocabulary))
    for argv in (["sample", str(run), "--engine", "numpy"], ["eval", str(run)], ["train", "--resume", str(run)]):
        assert_usage_error(capsys, argv, "vocabulary.json changed after step-00000003 was saved")


def test_readers_of_latest_survive_a_training_run_that_prunes(tmp_path, capsys):
    """eval --checkpoint latest, ten times while the run trains and replaces its checkpoints many times
    a second: each read ends on a complete checkpoint."""
    corpus = write_tiny_corpus(tmp_path)
    run = train_tiny_run(tmp_path / "run", corpus, "train.max_steps=2")
    trainer = rnnkit_process(
        "train",
        "--resume",
        str(run),
        "--max-steps",
        "100000",
        "--max-time",
        "60",
        "--set",
        "train.checkpoint_every=0.001",
        "--set",
        "train.log_every=1000",
    )
    try:
        while (
            len(list(RunDirectory(run).checkpoints_path.glob("step-*"))) < 1
            or not read_metrics(run)[-1:]
            or read_metrics(run)[-1]["event"] != "resume"
        ):
            assert trainer.poll() is None, trainer.stderr.read()
        for _ in range(10):
            assert run_main(["eval", str(run), "--checkpoint", "latest"]) == 0, capsys.readouterr().err
            assert json.loads(capsys.readouterr().out)["tokens"] > 0
    finally:
        trainer.send_signal(signal.SIGINT)
        trainer.communicate(timeout=60)


def test_a_run_directory_name_that_is_not_utf8_is_refused_at_creation(tmp_path):
    with pytest.raises(UsageError, match="the name holds bytes that are not UTF-8"):
        check_new_run_path(str(tmp_path / "run-\udcff"))
    assert list(tmp_path.iterdir()) == []


def test_a_file_of_ones_own_in_the_run_directory_is_not_the_model_s(tmp_path, capsys):
    corpus = write_tiny_corpus(tmp_path)
    run = train_tiny_run(tmp_path / "run", corpus, "train.max_steps=3")
    (run / "notes.txt").write_text("tried lr 2e-3\n")
    assert run_main(["eval", str(run)]) == 0
    (run / VOCABULARY).unlink()
    assert_usage_error(capsys, ["eval", str(run)], "vocabulary.json changed after step-00000003 was saved")
