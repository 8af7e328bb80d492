"""metrics.jsonl: the schema the writer checks and the reader that every program uses."""

import json

import pytest

from language_model_helpers import train_tiny_run, write_tiny_corpus
from rnnkit.errors import UsageError
from rnnkit.metrics_log import EVENTS, MetricsLog, check_record, read_metrics


def test_metrics_are_json_lines(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.write(
        {
            "event": "train",
            "step": 1,
            "epoch": 0.5,
            "loss": 2.0,
            "lr": 1e-3,
            "gradient_norm": 0.7,
            "tokens_per_second": 10.0,
            "elapsed": 0.1,
        }
    )
    log.write({"event": "eval", "step": 1, "loss": 1.5, "nll": 1.5, "elapsed": 0.2})
    log.close()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [record["event"] for record in records] == ["train", "eval"]
    assert read_metrics(tmp_path / "metrics.jsonl") == records
    assert read_metrics(tmp_path / "metrics.jsonl", "eval") == records[1:]


@pytest.mark.parametrize(
    "record, problem",
    [
        ({"event": "bogus", "elapsed": 0.0}, "unknown metrics event"),
        ({"event": "checkpoint", "elapsed": 0.0}, "missing \\['step'\\]"),
        ({"event": "checkpoint", "step": 1}, "missing \\['elapsed'\\]"),
        (
            {"event": "rollback", "to_step": 1, "lr_scale": 0.5, "rollbacks": 1, "elapsed": 0.0, "extra": 1},
            "not described",
        ),
    ],
)
def test_the_writer_refuses_a_record_outside_the_schema(tmp_path, record, problem):
    with pytest.raises(ValueError, match=problem):
        check_record(record)
    log = MetricsLog(tmp_path / "metrics.jsonl")
    with pytest.raises(ValueError):
        log.write(record)
    log.close()
    assert (tmp_path / "metrics.jsonl").read_text() == ""


def test_every_record_of_a_training_run_fits_the_schema(tmp_path):
    run = train_tiny_run(tmp_path / "run", write_tiny_corpus(tmp_path), "train.max_steps=6", "train.eval_every=5")
    records = read_metrics(run / "metrics.jsonl")
    assert {record["event"] for record in records} >= {"start", "train", "eval", "checkpoint", "end"}
    for record in records:
        check_record(record)
        assert set(EVENTS[record["event"]].fields) <= set(record)


def test_a_half_written_last_line_is_left_out(tmp_path):
    path = tmp_path / "metrics.jsonl"
    whole = json.dumps({"event": "checkpoint", "step": 3, "elapsed": 1.0})
    path.write_text(whole + "\n" + whole[:17])
    assert read_metrics(path) == [json.loads(whole)]
    path.write_text(whole + "\n" + whole)  # whole, but its line end not yet written
    assert read_metrics(path) == [json.loads(whole)] * 2


def test_a_broken_line_before_the_last_is_an_error_naming_it(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"event": "end", "step": 1, "reason": "max_steps", "elapsed": 1}\nnot json\n{}\n')
    with pytest.raises(UsageError, match="line 2: not a metrics record"):
        read_metrics(path)


def test_a_run_that_logged_nothing_has_no_records(tmp_path):
    assert read_metrics(tmp_path / "metrics.jsonl") == []
    with pytest.raises(UsageError, match="unknown metrics event"):
        read_metrics(tmp_path / "metrics.jsonl", "progress")
