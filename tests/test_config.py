import json
import os

import pytest

from rnnkit.config import (
    DEFAULT_PRESET,
    MAX_THREADS,
    apply_assignments,
    available_presets,
    config_from_dict,
    config_to_dict,
    read_config_record,
    read_preset,
    save_config,
    valid_keys,
)
from rnnkit.errors import UsageError
from rnnkit.runs import new_config
from rnnkit.tasks.language_model.config import LanguageModelConfig, upgrade_record

LM = LanguageModelConfig


def test_default_preset_overrides_only_some_defaults():
    preset = new_config(DEFAULT_PRESET, [], {})
    assert DEFAULT_PRESET in available_presets()
    assert preset.task == "language_model" and preset.model.cell == "lstm"
    assert preset.sample == LM().sample  # untouched sections keep the dataclass defaults
    assert (preset.data.window, preset.train.batch_size, preset.optim.lr) == (64, 16, 7e-3)


@pytest.mark.parametrize("name", available_presets())
def test_every_shipped_preset_is_a_valid_config(name):
    config = new_config(name, [], {})  # every key known to its task, every value in range
    assert config.task == read_preset(name)[0].get("task", "language_model")


def test_set_parses_toml_values_and_bare_strings():
    config = apply_assignments(
        LM(),
        ["model.cell=gru", "optim.lr=1e-3", "model.hidden_size=8", "model.tie_weights=false", "train.max_epochs=2"],
    )
    assert config.model.cell == "gru" and config.optim.lr == 1e-3 and config.model.hidden_size == 8
    assert config.train.max_epochs == 2.0 and isinstance(config.train.max_epochs, float)
    assert apply_assignments(LM(), ['model.gates=""']).model.gates == ""


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("model.hiden_size=3", r"unknown config key 'model.hiden_size'; valid keys in \[model\]: cell, nonlinearity"),
        (
            "modle.cell=gru",
            "unknown config section 'modle'; valid sections for the task language_model: optim, train, "
            "model, data, sample",
        ),
        ("train.window=8", r"unknown config key 'train.window'; valid keys in \[train\]: batch_size, seed"),
        ("model.hidden_size=abc", "model.hidden_size: cannot read 'abc' as an integer"),
        ("model.hidden_size=1.5", "model.hidden_size: expected an integer, got 1.5"),
        ("model.peephole=1", "model.peephole: expected true or false, got 1"),
        ("train.device=tpu", "train.device: expected one of auto, cpu, cuda"),
        ("model.gates=xy", "gates: unknown gate letter"),
        ("optim.lr=-1", r"optim.lr: expected a number in \(0, 100\]"),
        ("optim.lr=1e30", r"optim.lr: expected a number in \(0, 100\], got 1e\+30"),
        ("model.forget_bias=1e308", r"model.forget_bias: expected a number in \[-100, 100\]"),
        ("optim.lr=inf", "optim.lr: expected a finite number, got inf"),
        ("optim.lr=nan", "optim.lr: expected a finite number, got nan"),
        ("train.max_time=inf", "train.max_time: expected a finite number"),
        ("model.forget_bias=-inf", "model.forget_bias: expected a finite number"),
        ("optim.beta1=1.0", r"optim.beta1: expected a number in \[0, 1\), got 1.0"),
        ("optim.beta2=-0.1", r"optim.beta2: expected a number in \[0, 1\)"),
        ("optim.eps=0", "optim.eps: expected a positive number"),
        ("optim.weight_decay=-1e-4", "optim.weight_decay: expected 0 or more"),
        ("optim.momentum=-0.5", "optim.momentum: expected 0 or more"),
        ("train.threads=2000", f"train.threads: expected 0 \\(torch's default\\) to {MAX_THREADS}"),
        ("train.threads=-1", "train.threads: expected 0"),
        ("train.seed=-1", r"train.seed: expected an integer in \[0, 2\^63\)"),
        ("train.seed=9223372036854775807", None),  # 2^63 - 1 is the largest seed
        ("train.patience=-2", "train.patience: expected 0"),
        ("model.peephole=true", "model.peephole = True does not apply to model.cell = 'gru'"),
        ("model.reset=before", None),
        ("model.nonlinearity=relu", "model.nonlinearity = 'relu' does not apply to model.cell = 'gru'"),
        ("hidden_size=3", "expected section.key=value"),
        ("sample.prime=a\nb", "a value cannot contain a line break"),
        ("model.hidden_size=3\nmodel.cell=rnn", "a value cannot contain a line break"),
    ],
)
def test_bad_assignments_are_errors_listing_valid_keys(assignment, message):
    base = apply_assignments(LM(), ["model.cell=gru"])
    if message is None:
        apply_assignments(base, [assignment])
        return
    with pytest.raises(UsageError, match=message):
        apply_assignments(base, [assignment])


def test_cosine_needs_a_limit():
    with pytest.raises(UsageError, match="cosine.*needs a limit"):
        apply_assignments(LM(), ["optim.schedule=cosine"])
    assert apply_assignments(LM(), ["optim.schedule=cosine", "train.max_steps=10"]).optim.schedule == "cosine"


def test_tie_weights_needs_equal_sizes():
    with pytest.raises(UsageError, match="tie_weights"):
        apply_assignments(LM(), ["model.tie_weights=true"])


def test_json_round_trip(tmp_path):
    config = apply_assignments(new_config(DEFAULT_PRESET, [], {}), ["model.cell=gru", "model.reset=before"])
    save_config(config, tmp_path / "config.json")
    assert config_from_dict(read_config_record(tmp_path / "config.json"), LM) == config
    record = json.loads((tmp_path / "config.json").read_text())
    assert record["task"] == "language_model" and record["model"]["reset"] == "before"


def test_a_config_from_before_tasks_is_upgraded():
    old = {
        "model": {"cell": "gru"},
        "train": {"window": 32, "eval_tokens": 100, "sample_every": 7, "batch_size": 4},
        "sample": {"length": 9},
    }
    config = config_from_dict(upgrade_record(old), LM)
    assert (config.data.window, config.data.eval_tokens, config.sample.every) == (32, 100, 7)
    assert (config.train.batch_size, config.sample.length, config.model.cell) == (4, 9, "gru")
    assert "window" in old["train"]  # the record read from disk is not changed


def test_preset_file_with_unknown_key_bom_and_task(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("[model]\nhidden = 3\n")
    with pytest.raises(UsageError, match="unknown config key 'model.hidden'"):
        new_config(str(path), [], {})
    path.write_bytes("\ufeff[model]\nhidden_size = 3\n".encode("utf-8"))  # a byte-order mark, as some editors write
    assert new_config(str(path), [], {}).model.hidden_size == 3
    path.write_text('task = "speech"\n')
    with pytest.raises(UsageError, match="unknown task 'speech'; known tasks: language_model"):
        new_config(str(path), [], {})
    with pytest.raises(UsageError, match="unknown preset 'nope'; shipped presets: .*shakespeare-char"):
        read_preset("nope")


def test_a_fifo_or_directory_preset_is_not_a_regular_file(tmp_path):
    fifo = tmp_path / "preset.toml"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="not a regular file"):
        read_preset(str(fifo))
    with pytest.raises(UsageError, match="not a regular file"):
        read_preset(str(tmp_path) + "/")
    with pytest.raises(UsageError, match="no such config file"):
        read_preset(str(tmp_path / "absent.toml"))


def test_from_dict_checks_sections_and_task():
    with pytest.raises(UsageError, match=r"\[model\] must be a table"):
        config_from_dict({"model": 3}, LM)
    with pytest.raises(UsageError, match="task: this configuration is for 'language_model'"):
        config_from_dict({"task": "classifier"}, LM)
    assert config_from_dict(config_to_dict(LM()), LM) == LM()
    assert "window" in valid_keys(LM, "data") and "window" not in valid_keys(LM, "train")
