"""Typed configuration: frozen dataclasses hold the defaults, TOML presets and `--set` override them.

A run's configuration is its `task`, the sections every task shares ([optim] and [train], here) and
the sections its task owns (the language model's [model], [data] and [sample] are in
rnnkit.tasks.language_model.config). A task's configuration class subclasses `RunConfig`; the functions here
work on any of them. A preset (a TOML file in `rnnkit/presets/` or any path) names only the values it
changes; `--set section.key=value` changes one more. Unknown sections or keys, and values of the wrong
type or range, are errors that list the valid keys of the task. The resolved configuration is saved as
JSON in the run directory and rebuilt from it by `--resume`, `sample` and `eval`. This module imports
only the standard library.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import ClassVar

from rnnkit.atomic import read_json, write_text_atomically
from rnnkit.errors import UsageError
from rnnkit.spec import KINDS, CellSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 ships no TOML reader
    import tomli as tomllib

DEFAULT_PRESET = "shakespeare-char"
DEFAULT_TASK = "language_model"
OPTIMIZERS = ("adam", "adamw", "sgd", "adagrad", "rmsprop", "nt-asgd")
SCHEDULES = ("constant", "cosine", "plateau")
CLIPPING = ("norm", "value", "none")
DEVICES = ("auto", "cpu", "cuda")
MAX_LR = 100.0  # SGD at lr 30 (AWD-LSTM) is the largest in use; far above, every step diverges
MAX_LAYERS = 1000  # stacked recurrent layers (each is a module to build before the size check can run)
MAX_SEED = 2**63  # seeds are 0 <= seed < 2^63: what torch, numpy and Python all accept
MAX_THREADS = 4 * (os.cpu_count() or 1)  # more only waits on itself (and thousands crash OpenMP)


def require(condition: bool, key: str, message: str, value: object) -> None:
    if not condition:
        raise UsageError(f"{key}: {message}, got {value!r}")


def choice(key: str, value: object, choices: tuple[str, ...]) -> None:
    require(value in choices, key, f"expected one of {', '.join(choices)}", value)


def seed_in_range(seed: object) -> bool:
    return isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < MAX_SEED


def check_seed(key: str, seed: object) -> None:
    require(seed_in_range(seed), key, "expected an integer in [0, 2^63)", seed)


def check_seed_option(flag: str, seed: int | None) -> None:
    """A command-line seed (None: not given) in the range of train.seed."""
    if seed is not None and not seed_in_range(seed):
        raise UsageError(f"{flag} must be an integer in [0, 2^63), got {seed}")


@dataclass(frozen=True)
class Section:
    """A config section. Every number in it must be finite (inf and nan are never settings)."""

    name: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise UsageError(f"{self.name}.{item.name}: expected a finite number, got {value!r}")


@dataclass(frozen=True)
class CellSettings(Section):
    """The recurrent cell of a task's model: its kind and variant (EQUATIONS.md, "Cells and layers"). A variant key
    that does not apply to the chosen cell is an error, never silently ignored."""

    name: ClassVar[str] = "model"
    cell: str = "lstm"  # rnn, lstm, gru, or the scan cells mingru and minlstm (no variants)
    nonlinearity: str = "tanh"  # rnn
    peephole: bool = False  # lstm
    gates: str = "ifo"  # lstm
    coupled: bool = False  # lstm
    forget_bias: float = 0.0  # lstm; in [-100, 100]
    reset: str = "after"  # gru
    reset_gate: bool = True  # gru

    def __post_init__(self) -> None:
        super().__post_init__()
        choice(f"{self.name}.cell", self.cell, KINDS)
        require(
            -100 <= self.forget_bias <= 100,
            f"{self.name}.forget_bias",
            "expected a number in [-100, 100]",
            self.forget_bias,
        )
        try:
            spec = self.cell_spec()
        except ValueError as error:
            raise UsageError(f"{self.name}.{error}") from None
        defaults = CellSpec("lstm").keywords() | CellSpec("gru").keywords() | CellSpec("rnn").keywords()
        for key, value in defaults.items():
            if key not in spec.keywords() and getattr(self, key) != value:
                raise UsageError(
                    f"{self.name}.{key} = {getattr(self, key)!r} does not apply to "
                    f"{self.name}.cell = {self.cell!r}; leave it at {value!r}"
                )

    def cell_spec(self) -> CellSpec:
        return CellSpec(
            kind=self.cell,
            nonlinearity=self.nonlinearity,
            gates=self.gates,
            peephole=self.peephole,
            coupled=self.coupled,
            forget_bias=self.forget_bias,
            reset=self.reset,
            reset_gate=self.reset_gate,
        )


@dataclass(frozen=True)
class SequenceModelSettings(CellSettings):
    """Embedding, then a stacked recurrent layer: what every task's [model] starts from."""

    embedding_size: int = 64
    hidden_size: int = 256
    num_layers: int = 1  # at most MAX_LAYERS
    dropout: float = 0.0  # between recurrent layers and on the last layer's output (training only)
    embedding_dropout: float = 0.0  # on the embedded input tokens

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("embedding_size", "hidden_size", "num_layers"):
            require(getattr(self, key) >= 1, f"model.{key}", "expected a positive integer", getattr(self, key))
        require(self.num_layers <= MAX_LAYERS, "model.num_layers", f"expected 1 to {MAX_LAYERS}", self.num_layers)
        for key in ("dropout", "embedding_dropout"):
            require(0 <= getattr(self, key) < 1, f"model.{key}", "expected a probability in [0, 1)", getattr(self, key))


@dataclass(frozen=True)
class LabelledDataSettings(Section):
    """The [data] of a task that learns from labelled files (classifier, tagger): what every such task shares."""

    name: ClassVar[str] = "data"
    train: str = ""  # the labelled training file (--data)
    validation: str = ""  # the labelled validation file (--val); empty: the training file's last sentences
    train_fraction: float = 0.9  # without a validation file: the first fraction of sentences train
    lowercase: bool = False  # words are looked up lowercased
    min_count: int = 1  # a word seen fewer times in training is <unk>
    max_vocabulary: int = 0  # at most this many words, <pad> and <unk> included; 0: no limit
    max_length: int = 1000  # words of a sentence: a classifier truncates a longer one, a tagger splits it

    def __post_init__(self) -> None:
        super().__post_init__()
        require(1 <= self.max_length <= 1_000_000, "data.max_length", "expected 1 to 1000000 words", self.max_length)
        require(
            0 < self.train_fraction < 1, "data.train_fraction", "expected a fraction in (0, 1)", self.train_fraction
        )
        require(self.min_count >= 1, "data.min_count", "expected a positive integer", self.min_count)
        require(
            self.max_vocabulary == 0 or self.max_vocabulary >= 3,
            "data.max_vocabulary",
            "expected 0 (no limit) or at least 3",
            self.max_vocabulary,
        )


@dataclass(frozen=True)
class OptimConfig(Section):
    name: ClassVar[str] = "optim"
    optimizer: str = "adam"  # adam, adamw, sgd, adagrad, rmsprop
    lr: float = 2e-3  # in (0, 100]
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
    nonmono: int = 5  # nt-asgd: switch from SGD to averaged SGD when validation has not improved for this many
    ema_decay: float = 0.0  # evaluate an exponential moving average of the weights with this decay; 0: off

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("optim.optimizer", self.optimizer, OPTIMIZERS)
        choice("optim.schedule", self.schedule, SCHEDULES)
        choice("optim.clip", self.clip, CLIPPING)
        require(0 < self.lr <= MAX_LR, "optim.lr", f"expected a number in (0, {MAX_LR:g}]", self.lr)
        for key in ("beta1", "beta2"):
            require(0 <= getattr(self, key) < 1, f"optim.{key}", "expected a number in [0, 1)", getattr(self, key))
        require(self.eps > 0, "optim.eps", "expected a positive number", self.eps)
        for key in ("weight_decay", "momentum"):
            require(getattr(self, key) >= 0, f"optim.{key}", "expected 0 or more", getattr(self, key))
        require(self.clip_threshold > 0, "optim.clip_threshold", "expected a positive number", self.clip_threshold)
        require(self.warmup_steps >= 0, "optim.warmup_steps", "expected 0 or more", self.warmup_steps)
        require(
            0 <= self.min_lr_fraction <= 1,
            "optim.min_lr_fraction",
            "expected a fraction in [0, 1]",
            self.min_lr_fraction,
        )
        require(0 < self.plateau_factor < 1, "optim.plateau_factor", "expected a factor in (0, 1)", self.plateau_factor)
        require(self.plateau_patience >= 0, "optim.plateau_patience", "expected 0 or more", self.plateau_patience)
        require(self.nonmono >= 1, "optim.nonmono", "expected a positive integer", self.nonmono)
        require(
            0 <= self.ema_decay < 1, "optim.ema_decay", "expected a decay in [0, 1) (0: no average)", self.ema_decay
        )
        require(
            not (self.ema_decay and self.optimizer == "nt-asgd"),
            "optim.ema_decay",
            "nt-asgd averages the weights itself; expected 0 with it",
            self.ema_decay,
        )


@dataclass(frozen=True)
class TrainConfig(Section):
    name: ClassVar[str] = "train"
    batch_size: int = 32  # examples (or parallel streams) per step
    seed: int = 0
    device: str = "auto"  # auto (cuda when available), cpu, cuda
    threads: int = 0  # CPU threads for torch; 0 keeps torch's default (one per core)
    max_steps: int = 0  # limits count the whole run, resumes included; 0 means no limit
    max_epochs: float = 0.0
    max_time: float = 0.0  # seconds of training
    log_every: int = 50  # steps between progress records in metrics.jsonl
    eval_every: int = 500  # steps between validations (and one at the end); 0: none
    eval_batch_size: int = 16  # batch size of the periodic validation
    patience: int = 0  # stop after this many validations without a new best; 0: never
    checkpoint_every: float = 30.0  # seconds of training between checkpoints
    checkpoint_steps: int = 0  # also a checkpoint every this many steps (pruned like the others); 0: by time only
    keep_checkpoints: int = 0  # keep this many recent checkpoints besides latest and best
    keep_every: int = 0  # also save and keep a checkpoint every this many steps, for later analysis; 0: none
    max_bad_steps: int = 3  # consecutive non-finite steps before rolling back to the last checkpoint
    rollback_lr_factor: float = 0.5  # the lr is multiplied by this at each rollback
    max_rollbacks: int = 10  # then training stops: it diverges whatever the lr
    tensorboard: bool = False  # also write TensorBoard event files into the run's tensorboard/ (an extra)

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("batch_size", "log_every", "eval_batch_size", "max_bad_steps"):
            require(getattr(self, key) >= 1, f"train.{key}", "expected a positive integer", getattr(self, key))
        for key in (
            "max_steps",
            "max_epochs",
            "max_time",
            "eval_every",
            "patience",
            "keep_checkpoints",
            "keep_every",
            "checkpoint_steps",
            "max_rollbacks",
        ):
            require(
                getattr(self, key) >= 0, f"train.{key}", "expected 0 (no limit / never) or more", getattr(self, key)
            )
        require(
            0 <= self.threads <= MAX_THREADS,
            "train.threads",
            f"expected 0 (torch's default) to {MAX_THREADS} (4 per CPU)",
            self.threads,
        )
        check_seed("train.seed", self.seed)
        require(
            self.checkpoint_every > 0,
            "train.checkpoint_every",
            "expected a positive number of seconds",
            self.checkpoint_every,
        )
        require(
            0 < self.rollback_lr_factor < 1,
            "train.rollback_lr_factor",
            "expected a factor in (0, 1)",
            self.rollback_lr_factor,
        )
        choice("train.device", self.device, DEVICES)


@dataclass(frozen=True)
class RunConfig:
    """What every task's configuration has: its name and the shared sections. A task subclasses
    this, sets `task`'s default to its own name and adds the sections it owns."""

    task: str = ""
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        expected = type(self).__dataclass_fields__["task"].default
        require(self.task == expected, "task", f"this configuration is for {expected!r}", self.task)
        limits = (self.train.max_steps, self.train.max_epochs, self.train.max_time)
        if self.optim.schedule == "cosine" and not any(limits):
            raise UsageError(
                "optim.schedule = 'cosine' needs a limit to decay over: set train.max_steps, "
                "train.max_epochs or train.max_time"
            )


TYPE_NAMES = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    tuple[int, ...]: "a list of integers, e.g. [1000, 5000]",
}


def sections(schema: type[RunConfig]) -> dict[str, type[Section]]:
    """A task configuration's sections by name, in order."""
    hints = typing.get_type_hints(schema)
    return {item.name: hints[item.name] for item in dataclasses.fields(schema) if item.name != "task"}


def valid_keys(schema: type[RunConfig], section: str) -> list[str]:
    return [item.name for item in dataclasses.fields(sections(schema)[section])]


def _check_key(schema: type[RunConfig], section: str, key: str) -> type:
    known = sections(schema)
    if section not in known:
        raise UsageError(
            f"unknown config section {section!r}; valid sections for the task {schema.task}: {', '.join(known)}"
        )
    types = typing.get_type_hints(known[section])
    if key not in types or key == "name":
        raise UsageError(
            f"unknown config key '{section}.{key}'; valid keys in [{section}]: {', '.join(valid_keys(schema, section))}"
        )
    return types[key]


def _check_type(schema: type[RunConfig], section: str, key: str, value: object) -> object:
    """The value, if it has the key's type (an integer is accepted where a number is expected)."""
    expected = _check_key(schema, section, key)
    if expected == tuple[int, ...]:  # TOML and JSON give lists; a frozen config holds tuples
        if isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return tuple(value)
        raise UsageError(f"{section}.{key}: expected {TYPE_NAMES[expected]}, got {value!r}")
    fits = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not fits:
        raise UsageError(f"{section}.{key}: expected {TYPE_NAMES[expected]}, got {value!r}")
    return value


def config_from_dict(record: object, schema: type[RunConfig], source: str = "config") -> RunConfig:
    """A task configuration from nested dicts ({section: {key: value}}); unset keys keep their defaults."""
    if not isinstance(record, dict):
        raise UsageError(f"{source}: expected a table of sections, got {type(record).__name__}")
    values = {}
    for section, entries in record.items():
        if section == "task":
            values["task"] = entries
            continue
        if section not in sections(schema):
            _check_key(schema, section, "")  # raises, listing the valid sections
        if not isinstance(entries, dict):
            raise UsageError(f"{source}: [{section}] must be a table of keys")
        values[section] = sections(schema)[section](
            **{key: _check_type(schema, section, key, value) for key, value in entries.items()}
        )
    return schema(**values)


def config_to_dict(config: RunConfig) -> dict:
    return dataclasses.asdict(config)


def task_of(record: object) -> str:
    """The task a configuration record is for (records from before tasks existed are language models)."""
    task = record.get("task", DEFAULT_TASK) if isinstance(record, dict) else DEFAULT_TASK
    if not isinstance(task, str):
        raise UsageError(f"task: expected a string, got {task!r}")
    return task


def _parse_value(name: str, expected: type, text: str) -> object:
    """A --set value: TOML syntax (1e-3, true, "text"); a bare word is taken as a string for string keys."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        if expected is str:
            return text
        raise UsageError(f"{name}: cannot read {text!r} as {TYPE_NAMES[expected]}") from None


def split_assignment(assignment: str) -> tuple[str, str, str]:
    """'section.key=value' -> (section, key, value text); 'task=NAME' -> ('', 'task', NAME)."""
    if "\n" in assignment or "\r" in assignment:
        raise UsageError(f"--set {assignment!r}: a value cannot contain a line break")
    name, equals, text = assignment.partition("=")
    if equals and name.strip() == "task":
        return "", "task", text.strip().strip("\"'")
    section, dot, key = name.strip().partition(".")
    if not equals or not dot:
        raise UsageError(f"--set {assignment!r}: expected section.key=value, e.g. model.hidden_size=512")
    return section, key, text


def parse_assignment(assignment: str, schema: type[RunConfig]) -> tuple[str, object]:
    """'section.key=value' -> ('section.key', value), the value checked against the key's type."""
    section, key, text = split_assignment(assignment)
    if not section:
        return key, text
    expected = _check_key(schema, section, key)
    quoted = text.strip()[:1] in ('"', "'")
    value = text if expected is str and not quoted else _parse_value(f"{section}.{key}", expected, text.strip())
    return f"{section}.{key}", _check_type(schema, section, key, value)


def with_values(config: RunConfig, values: dict[str, object]) -> RunConfig:
    """A copy with some keys replaced, given as {'section.key': value}; types and ranges checked."""
    schema = type(config)
    record = config_to_dict(config)
    for name, value in values.items():
        section, _, key = name.partition(".")
        if name == "task":
            require(value == config.task, "task", f"cannot change the task of a {config.task} config", value)
            continue
        record[section][key] = _check_type(schema, section, key, value)
    return config_from_dict(record, schema)


def apply_assignments(config: RunConfig, assignments: list[str]) -> RunConfig:
    return with_values(config, dict(parse_assignment(assignment, type(config)) for assignment in assignments))


def available_presets() -> list[str]:
    folder = resources.files("rnnkit") / "presets"
    return sorted(entry.name[: -len(".toml")] for entry in folder.iterdir() if entry.name.endswith(".toml"))


def read_preset(name_or_path: str) -> tuple[dict, str]:
    """A preset's record of overrides and where it came from: a shipped preset's name, or a TOML path.
    The record is checked against its task's configuration once the task is known."""
    if name_or_path.endswith(".toml") or "/" in name_or_path:
        path = Path(name_or_path)
        try:
            if not path.exists():
                raise UsageError(f"{path}: no such config file")
            if not path.is_file():
                raise UsageError(f"{path}: not a regular file (a config file must be a TOML file)")
            text, source = path.read_bytes(), str(path)
        except OSError as error:
            raise UsageError(f"{path}: cannot read the config file ({error.strerror})") from None
    elif name_or_path in available_presets():
        text = (resources.files("rnnkit") / "presets" / f"{name_or_path}.toml").read_bytes()
        source = f"preset {name_or_path}"
    else:
        raise UsageError(
            f"unknown preset {name_or_path!r}; shipped presets: {', '.join(available_presets())} (or give a .toml path)"
        )
    try:
        return tomllib.loads(text.decode("utf-8-sig")), source  # a byte-order mark is allowed
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"{source}: not valid TOML ({error})") from None


def save_config(config: RunConfig, path: Path | str) -> None:
    write_text_atomically(path, json.dumps(config_to_dict(config), indent=2) + "\n")


def read_config_record(path: Path | str) -> dict:
    record = read_json(path, "config")
    if not isinstance(record, dict):
        raise UsageError(f"{path}: expected a table of sections, got {type(record).__name__}")
    return record
