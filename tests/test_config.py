import json

import pytest

from rnnkit.config import (
    DEFAULT_PRESET, Config, apply_assignments, available_presets, config_from_dict, config_to_dict, load_config,
    load_preset, save_config,
)
from rnnkit.errors import UsageError


def test_default_preset_overrides_only_some_defaults():
    preset = load_preset(DEFAULT_PRESET)
    assert DEFAULT_PRESET in available_presets()
    assert preset.model.cell == "lstm"
    assert preset.sample == Config().sample  # untouched sections keep the dataclass defaults


def test_set_parses_toml_values_and_bare_strings():
    config = apply_assignments(Config(), ["model.cell=gru", "optim.lr=1e-3", "model.hidden_size=8",
                                          "model.tie_weights=false", 'model.gates=""', "train.max_epochs=2"])
    assert config.model.cell == "gru" and config.optim.lr == 1e-3 and config.model.hidden_size == 8
    assert config.model.gates == "" and config.train.max_epochs == 2.0
    assert isinstance(config.train.max_epochs, float)


@pytest.mark.parametrize("assignment, message", [
    ("model.hiden_size=3", r"unknown config key 'model.hiden_size'; valid keys in \[model\]: cell, embedding_size"),
    ("modle.cell=gru", "unknown config section 'modle'; valid sections: model, data, optim, train, sample"),
    ("model.hidden_size=abc", "model.hidden_size: cannot read 'abc' as an integer"),
    ("model.hidden_size=1.5", "model.hidden_size: expected an integer, got 1.5"),
    ("model.peephole=1", "model.peephole: expected true or false, got 1"),
    ("train.device=tpu", "train.device: expected one of auto, cpu, cuda"),
    ("model.gates=xy", "gates: unknown gate letter"),
    ("optim.lr=-1", "optim.lr: expected a positive number"),
    ("hidden_size=3", "expected section.key=value"),
])
def test_bad_assignments_are_errors_listing_valid_keys(assignment, message):
    with pytest.raises(UsageError, match=message):
        apply_assignments(Config(), [assignment])


def test_cosine_needs_a_limit():
    with pytest.raises(UsageError, match="cosine.*needs a limit"):
        apply_assignments(Config(), ["optim.schedule=cosine"])
    assert apply_assignments(Config(), ["optim.schedule=cosine", "train.max_steps=10"]).optim.schedule == "cosine"


def test_tie_weights_needs_equal_sizes():
    with pytest.raises(UsageError, match="tie_weights"):
        apply_assignments(Config(), ["model.tie_weights=true"])


def test_json_round_trip(tmp_path):
    config = apply_assignments(load_preset(DEFAULT_PRESET), ["model.cell=gru", "model.reset=before"])
    save_config(config, tmp_path / "config.json")
    assert load_config(tmp_path / "config.json") == config
    assert json.loads((tmp_path / "config.json").read_text())["model"]["reset"] == "before"


def test_preset_file_with_unknown_key(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("[model]\nhidden = 3\n")
    with pytest.raises(UsageError, match="unknown config key 'model.hidden'"):
        load_preset(str(path))
    path.write_text("[model]\nhidden_size = 3\n")
    assert load_preset(str(path)).model.hidden_size == 3
    with pytest.raises(UsageError, match="unknown preset 'nope'; shipped presets: .*shakespeare-char"):
        load_preset("nope")


def test_from_dict_checks_sections():
    with pytest.raises(UsageError, match=r"\[model\] must be a table"):
        config_from_dict({"model": 3})
    assert config_from_dict(config_to_dict(Config())) == Config()
