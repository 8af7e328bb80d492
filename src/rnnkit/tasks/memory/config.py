"""The long-memory problems' configuration: [model] and [data]. No torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from rnnkit.config import RunConfig, Section, SequenceModelSettings, choice, require

PROBLEMS = ("adding", "copy")
MAX_LENGTH = 100_000


@dataclass(frozen=True)
class ModelConfig(SequenceModelSettings):
    """A recurrent layer over the sequence and a linear read-out."""

    embedding_size: int = 16  # the layer's input: a symbol's vector (copy), or the two numbers projected (adding)
    hidden_size: int = 64


@dataclass(frozen=True)
class DataConfig(Section):
    """The problem, made on the fly from train.seed: a fresh batch every step, a fixed validation set."""

    name: ClassVar[str] = "data"
    problem: str = "adding"  # adding (Hochreiter & Schmidhuber 1997) or copy (selective copying); --data sets it
    length: int = 100  # T: steps between the first thing to remember and the answer
    symbols: int = 8  # copy: the data symbols
    copies: int = 4  # copy: how many of them are scattered in the sequence, to be given back in order
    validation_examples: int = 1000
    validation_seed: int = 20_241_002  # the validation set's own seed, apart from training's

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("data.problem", self.problem, PROBLEMS)
        require(2 <= self.length <= MAX_LENGTH, "data.length", f"expected 2 to {MAX_LENGTH:,}", self.length)
        require(2 <= self.symbols <= 1000, "data.symbols", "expected 2 to 1,000", self.symbols)
        require(1 <= self.copies <= self.length, "data.copies", "expected 1 to data.length", self.copies)
        require(
            1 <= self.validation_examples <= 100_000,
            "data.validation_examples",
            "expected 1 to 100,000",
            self.validation_examples,
        )
        require(self.validation_seed >= 0, "data.validation_seed", "expected 0 or more", self.validation_seed)


@dataclass(frozen=True)
class MemoryConfig(RunConfig):
    task: str = "memory"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
