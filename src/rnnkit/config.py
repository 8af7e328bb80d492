"""Typed configuration: frozen dataclasses hold the defaults, TOML presets and `--set` override them.

A run's configuration is five sections (model, data, optim, train, sample). A preset (a TOML file
in `rnnkit/presets/` or any path) names only the values it changes; `--set section.key=value`
changes one more. Unknown sections or keys, and values of the wrong type, are errors that list the
valid keys. The resolved configuration is saved as JSON in the run directory and rebuilt from it by
`--resume`, `sample` and `eval`. This module imports only the standard library.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from rnnkit.atomic import read_json, write_text_atomically
from rnnkit.errors import UsageError
from rnnkit.spec import CellSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 ships no TOML reader
    import tomli as tomllib

DEFAULT_PRESET = "shakespeare-char"
OPTIMIZERS = ("adam", "adamw", "sgd", "adagrad", "rmsprop")
SCHEDULES = ("constant", "cosine", "plateau")
CLIPPING = ("norm", "value", "none")
DEVICES = ("auto", "cpu", "cuda")


def _require(condition: bool, key: str, message: str, value: object) -> None:
    if not condition:
        raise UsageError(f"{key}: {message}, got {value!r}")


def _choice(key: str, value: object, choices: tuple[str, ...]) -> None:
    _require(value in choices, key, f"expected one of {', '.join(choices)}", value)


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "lstm"  # rnn, lstm or gru
    embedding_size: int = 64
    hidden_size: int = 256
    num_layers: int = 1
    dropout: float = 0.0  # between recurrent layers and on the last layer's output (training only)
    embedding_dropout: float = 0.0  # on the embedded input tokens
    tie_weights: bool = False  # decoder shares the embedding matrix (needs embedding_size == hidden_size)
    nonlinearity: str = "tanh"  # rnn
    peephole: bool = False  # lstm
    gates: str = "ifo"  # lstm
    coupled: bool = False  # lstm
    forget_bias: float = 0.0  # lstm
    reset: str = "after"  # gru
    reset_gate: bool = True  # gru

    def __post_init__(self) -> None:
        _choice("model.cell", self.cell, ("rnn", "lstm", "gru"))
        for key in ("embedding_size", "hidden_size", "num_layers"):
            _require(getattr(self, key) >= 1, f"model.{key}", "expected a positive integer", getattr(self, key))
        for key in ("dropout", "embedding_dropout"):
            _require(0 <= getattr(self, key) < 1, f"model.{key}", "expected a probability in [0, 1)", getattr(self, key))
        _require(
            not self.tie_weights or self.embedding_size == self.hidden_size,
            "model.tie_weights", f"needs embedding_size == hidden_size ({self.hidden_size})", self.embedding_size,
        )
        try:
            self.cell_spec()
        except ValueError as error:
            raise UsageError(f"model.{error}") from None

    def cell_spec(self) -> CellSpec:
        return CellSpec(
            kind=self.cell, nonlinearity=self.nonlinearity, gates=self.gates, peephole=self.peephole,
            coupled=self.coupled, forget_bias=self.forget_bias, reset=self.reset, reset_gate=self.reset_gate,
        )


@dataclass(frozen=True)
class DataConfig:
    corpus: str = "tinyshakespeare"  # a text file, or the name of a corpus shipped with rnnkit
    validation: str = ""  # a separate validation file; empty: the corpus's last (1 - train_fraction)
    train_fraction: float = 0.9
    tokenizer: str = "char"

    def __post_init__(self) -> None:
        _require(0 < self.train_fraction < 1, "data.train_fraction", "expected a fraction in (0, 1)", self.train_fraction)
        _choice("data.tokenizer", self.tokenizer, ("char",))


@dataclass(frozen=True)
class OptimConfig:
    optimizer: str = "adam"  # adam, adamw, sgd, adagrad, rmsprop
    lr: float = 2e-3
    weight_decay: float = 0.0
    momentum: float = 0.0  # sgd and rmsprop
    beta1: float = 0.9  # adam, adamw
    beta2: float = 0.999  # adam, adamw; rmsprop's smoothing constant alpha is 0.99
    eps: float = 1e-8
    clip: str = "norm"  # norm: rescale the global gradient norm; value: clip each component; none
    clip_threshold: float = 1.0  # the norm bound, or the per-component bound
    schedule: str = "constant"  # constant, cosine (after warmup), plateau (decay when validation stalls)
    warmup_steps: int = 0  # linear warmup from 0, for every schedule
    min_lr_fraction: float = 0.1  # cosine: the final lr as a fraction of lr
    plateau_factor: float = 0.5  # plateau: the lr is multiplied by this ...
    plateau_patience: int = 1  # ... after this many evaluations without improvement

    def __post_init__(self) -> None:
        _choice("optim.optimizer", self.optimizer, OPTIMIZERS)
        _choice("optim.schedule", self.schedule, SCHEDULES)
        _choice("optim.clip", self.clip, CLIPPING)
        _require(self.lr > 0, "optim.lr", "expected a positive number", self.lr)
        _require(self.clip_threshold > 0, "optim.clip_threshold", "expected a positive number", self.clip_threshold)
        _require(self.warmup_steps >= 0, "optim.warmup_steps", "expected 0 or more", self.warmup_steps)
        _require(0 <= self.min_lr_fraction <= 1, "optim.min_lr_fraction", "expected a fraction in [0, 1]", self.min_lr_fraction)
        _require(0 < self.plateau_factor < 1, "optim.plateau_factor", "expected a factor in (0, 1)", self.plateau_factor)
        _require(self.plateau_patience >= 0, "optim.plateau_patience", "expected 0 or more", self.plateau_patience)


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 32  # parallel streams of the corpus
    window: int = 64  # truncated BPTT length: gradients flow back at most this many steps
    seed: int = 0
    device: str = "auto"  # auto (cuda when available), cpu, cuda
    threads: int = 0  # CPU threads for torch; 0 keeps torch's default (one per core)
    max_steps: int = 0  # limits count the whole run, resumes included; 0 means no limit
    max_epochs: float = 0.0
    max_time: float = 0.0  # seconds of training
    log_every: int = 50  # steps between progress records in metrics.jsonl
    eval_every: int = 500  # steps between validations (and one at the end); 0: none
    eval_batch_size: int = 16  # streams for the periodic validation (`rnnkit eval` always uses 1)
    eval_tokens: int = 0  # the periodic validation reads at most this many tokens; 0: all of them
    sample_every: int = 0  # steps between samples written to samples.txt; 0: none
    checkpoint_every: float = 30.0  # seconds of training between checkpoints
    max_bad_steps: int = 3  # consecutive non-finite steps before rolling back to the last checkpoint
    rollback_lr_factor: float = 0.5  # the lr is multiplied by this at each rollback
    max_rollbacks: int = 10  # then training stops: it diverges whatever the lr

    def __post_init__(self) -> None:
        for key in ("batch_size", "window", "log_every", "eval_batch_size", "max_bad_steps"):
            _require(getattr(self, key) >= 1, f"train.{key}", "expected a positive integer", getattr(self, key))
        for key in ("threads", "max_steps", "max_epochs", "max_time", "eval_every", "eval_tokens", "sample_every",
                    "max_rollbacks"):
            _require(getattr(self, key) >= 0, f"train.{key}", "expected 0 (no limit / never) or more", getattr(self, key))
        _require(self.checkpoint_every > 0, "train.checkpoint_every", "expected a positive number of seconds", self.checkpoint_every)
        _require(0 < self.rollback_lr_factor < 1, "train.rollback_lr_factor", "expected a factor in (0, 1)", self.rollback_lr_factor)
        _choice("train.device", self.device, DEVICES)


@dataclass(frozen=True)
class SampleConfig:
    length: int = 500  # tokens to generate after the prime
    temperature: float = 1.0  # 0 is greedy
    top_k: int = 0  # keep the k most likely tokens; 0: all
    top_p: float = 1.0  # keep the smallest set of tokens whose probability reaches p
    prime: str = ""  # text to start from; empty: start after a newline

    def __post_init__(self) -> None:
        _require(self.length >= 0, "sample.length", "expected 0 or more", self.length)
        _require(self.temperature >= 0, "sample.temperature", "expected 0 or more", self.temperature)
        _require(self.top_k >= 0, "sample.top_k", "expected 0 (off) or more", self.top_k)
        _require(0 < self.top_p <= 1, "sample.top_p", "expected a probability in (0, 1]", self.top_p)


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)

    def __post_init__(self) -> None:
        limits = (self.train.max_steps, self.train.max_epochs, self.train.max_time)
        if self.optim.schedule == "cosine" and not any(limits):
            raise UsageError("optim.schedule = 'cosine' needs a limit to decay over: set train.max_steps, "
                             "train.max_epochs or train.max_time")


SECTIONS = {"model": ModelConfig, "data": DataConfig, "optim": OptimConfig, "train": TrainConfig, "sample": SampleConfig}
TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def valid_keys(section: str) -> list[str]:
    return [item.name for item in dataclasses.fields(SECTIONS[section])]


def _key_types(section: str) -> dict[str, type]:
    return typing.get_type_hints(SECTIONS[section])


def _check_key(section: str, key: str) -> type:
    if section not in SECTIONS:
        raise UsageError(f"unknown config section {section!r}; valid sections: {', '.join(SECTIONS)}")
    types = _key_types(section)
    if key not in types:
        raise UsageError(f"unknown config key '{section}.{key}'; valid keys in [{section}]: {', '.join(valid_keys(section))}")
    return types[key]


def _check_type(section: str, key: str, value: object) -> object:
    """The value, if it has the key's type (an integer is accepted where a number is expected)."""
    expected = _check_key(section, key)
    fits = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not fits:
        raise UsageError(f"{section}.{key}: expected {TYPE_NAMES[expected]}, got {value!r}")
    return value


def config_from_dict(record: object, source: str = "config") -> Config:
    """A Config from nested dicts ({section: {key: value}}); unset keys keep their defaults."""
    if not isinstance(record, dict):
        raise UsageError(f"{source}: expected a table of sections, got {type(record).__name__}")
    sections = {}
    for section, values in record.items():
        if section not in SECTIONS:
            raise UsageError(f"{source}: unknown config section {section!r}; valid sections: {', '.join(SECTIONS)}")
        if not isinstance(values, dict):
            raise UsageError(f"{source}: [{section}] must be a table of keys")
        sections[section] = SECTIONS[section](**{key: _check_type(section, key, value) for key, value in values.items()})
    return Config(**sections)


def config_to_dict(config: Config) -> dict:
    return dataclasses.asdict(config)


def _parse_value(name: str, expected: type, text: str) -> object:
    """A --set value: TOML syntax (1e-3, true, "text"); a bare word is taken as a string for string keys."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        if expected is str:
            return text
        raise UsageError(f"{name}: cannot read {text!r} as {TYPE_NAMES[expected]}") from None


def parse_assignment(assignment: str) -> tuple[str, str, object]:
    """'section.key=value' -> (section, key, value), the value checked against the key's type."""
    name, equals, text = assignment.partition("=")
    section, dot, key = name.strip().partition(".")
    if not equals or not dot:
        raise UsageError(f"--set {assignment!r}: expected section.key=value, e.g. model.hidden_size=512")
    expected = _check_key(section, key)
    quoted = text.strip()[:1] in ('"', "'")
    value = text if expected is str and not quoted else _parse_value(name.strip(), expected, text.strip())
    return section, key, _check_type(section, key, value)


def with_values(config: Config, values: dict[str, object]) -> Config:
    """A copy with some keys replaced, given as {'section.key': value}; types and ranges checked."""
    record = config_to_dict(config)
    for name, value in values.items():
        section, _, key = name.partition(".")
        record[section][key] = _check_type(section, key, value)
    return config_from_dict(record)


def apply_assignments(config: Config, assignments: list[str]) -> Config:
    values = {}
    for assignment in assignments:
        section, key, value = parse_assignment(assignment)
        values[f"{section}.{key}"] = value
    return with_values(config, values)


def available_presets() -> list[str]:
    folder = resources.files("rnnkit") / "presets"
    return sorted(entry.name[: -len(".toml")] for entry in folder.iterdir() if entry.name.endswith(".toml"))


def load_preset(name_or_path: str) -> Config:
    """Defaults overridden by a preset: a shipped preset's name, or the path of a TOML file."""
    if name_or_path.endswith(".toml") or "/" in name_or_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise UsageError(f"{path}: no such config file")
        text, source = path.read_bytes(), str(path)
    elif name_or_path in available_presets():
        text = (resources.files("rnnkit") / "presets" / f"{name_or_path}.toml").read_bytes()
        source = f"preset {name_or_path}"
    else:
        raise UsageError(f"unknown preset {name_or_path!r}; shipped presets: {', '.join(available_presets())} (or give a .toml path)")
    try:
        record = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"{source}: not valid TOML ({error})") from None
    return config_from_dict(record, source)


def save_config(config: Config, path: Path | str) -> None:
    write_text_atomically(path, json.dumps(config_to_dict(config), indent=2) + "\n")


def load_config(path: Path | str) -> Config:
    return config_from_dict(read_json(path, "config"), str(path))
