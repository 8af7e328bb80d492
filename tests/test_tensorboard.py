"""train.tensorboard: TensorBoard event files beside metrics.jsonl, read back with TensorBoard's own
reader and compared with what metrics.jsonl recorded."""

import io
import sys

import pytest

from cli_helpers import assert_usage_error
from language_model_helpers import read_metrics, tiny_config, train_tiny_run, write_tiny_corpus
from rnnkit.rundir import TENSORBOARD, fingerprints

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

SETTINGS = ["train.max_steps=12", "train.log_every=4", "train.eval_every=6", "sample.every=6", "sample.length=20"]


def read_events(path):
    accumulator = event_accumulator.EventAccumulator(str(path), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def test_a_run_writes_its_curves_samples_and_settings_for_tensorboard(tmp_path):
    run = train_tiny_run(tmp_path / "run", write_tiny_corpus(tmp_path), *SETTINGS, "train.tensorboard=true")
    events = read_events(run / TENSORBOARD)
    records = read_metrics(run)
    train = [record for record in records if record["event"] == "train"]
    evals = [record for record in records if record["event"] == "eval"]
    assert [record["step"] for record in train] == [4, 8, 12] and [record["step"] for record in evals] == [6, 12]
    for name in ("loss", "lr", "gradient_norm", "tokens_per_second"):
        scalars = events.Scalars(f"train/{name}")
        assert [scalar.step for scalar in scalars] == [4, 8, 12]
        assert [scalar.value for scalar in scalars] == pytest.approx([record[name] for record in train], rel=1e-6)
    assert all(record["gradient_norm"] > 0 for record in train)
    for name in ("nll", "loss"):
        scalars = events.Scalars(f"validation/{name}")
        assert [(s.step, pytest.approx(s.value, rel=1e-6)) for s in scalars] == [(r["step"], r[name]) for r in evals]
    samples = events.Tensors("samples/text_summary")
    assert [sample.step for sample in samples] == [6, 12]
    assert samples[0].tensor_proto.string_val[0].decode().startswith("    ")
    plugins = events.PluginTagToContent("hparams")
    assert "_hparams_/experiment" in plugins and b"validation/nll" in plugins["_hparams_/experiment"]
    assert b"optim.lr" in plugins["_hparams_/session_start_info"]
    assert TENSORBOARD not in fingerprints(run)  # not one of the files that give ids their meaning


def test_it_is_off_by_default_and_can_be_switched_on_at_resume(tmp_path):
    from rnnkit.runs import resume_run

    run = train_tiny_run(tmp_path / "run", write_tiny_corpus(tmp_path), *SETTINGS)
    assert not (run / TENSORBOARD).exists()
    trainer = resume_run(str(run), {"train.max_steps": 20, "train.tensorboard": True}, progress_stream=io.StringIO())
    trainer.run(resumed=True)
    scalars = read_events(run / TENSORBOARD).Scalars("train/loss")
    assert [scalar.step for scalar in scalars] == [16, 20]


def test_without_the_package_one_line_names_it_and_no_run_is_made(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard now raises ImportError
    corpus = write_tiny_corpus(tmp_path)
    argv = ["train", "--data", str(corpus), "--out", str(tmp_path / "run"), "--set", "train.tensorboard=true"]
    assert_usage_error(capsys, argv + ["--max-steps", "2"], "tensorboard package", "rnnkit[tensorboard]")
    assert not (tmp_path / "run").exists()
    tiny_config(corpus, "train.tensorboard=true")  # the setting itself is valid


def test_a_resumed_run_purges_what_a_killed_session_wrote_past_its_checkpoint(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from rnnkit.runs import resume_run

    run = train_tiny_run(tmp_path / "run", write_tiny_corpus(tmp_path), *SETTINGS, "train.tensorboard=true")
    with SummaryWriter(str(run / TENSORBOARD)) as killed:  # a session that logged on and died unsaved
        killed.add_scalar("train/loss", 1000.0, 16)
    trainer = resume_run(str(run), {"train.max_steps": 20}, progress_stream=io.StringIO())
    trainer.run(resumed=True)
    losses = {scalar.step: scalar.value for scalar in read_events(run / TENSORBOARD).Scalars("train/loss")}
    assert sorted(losses) == [4, 8, 12, 16, 20] and losses[16] != 1000.0
