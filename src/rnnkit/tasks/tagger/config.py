"""The tagger's configuration: the sections it owns, [model] and [data]. No torch."""

from __future__ import annotations

from dataclasses import dataclass, field

from rnnkit.config import LabelledDataSettings, RunConfig, SequenceModelSettings, choice, require
from rnnkit.data.tagged import COLUMNS, FORMATS

CHAR_ENCODERS = ("none", "bilstm")


@dataclass(frozen=True)
class ModelConfig(SequenceModelSettings):
    embedding_size: int = 100
    hidden_size: int = 128
    num_layers: int = 2
    dropout: float = 0.33  # on the word representations, between layers and before the output layer
    bidirectional: bool = True
    word_dropout: float = 0.0  # in training, a word becomes <unk> with this probability (its characters stay)
    char_encoder: str = "bilstm"  # none, or bilstm: a BiLSTM over each word's characters
    char_embedding_size: int = 32
    char_hidden_size: int = 50  # per direction
    residual: bool = False  # skip connections between stacked layers (from the second layer on)
    crf: bool = False  # a linear-chain CRF output layer, decoded by Viterbi

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("model.char_encoder", self.char_encoder, CHAR_ENCODERS)
        require(0 <= self.word_dropout < 1, "model.word_dropout", "expected a probability in [0, 1)", self.word_dropout)
        for key in ("char_embedding_size", "char_hidden_size"):
            require(getattr(self, key) >= 1, f"model.{key}", "expected a positive integer", getattr(self, key))


@dataclass(frozen=True)
class DataConfig(LabelledDataSettings):
    format: str = "auto"  # auto, conllu, tsv
    column: str = "upos"  # CoNLL-U: the tag column, upos or xpos

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("data.format", self.format, FORMATS)
        choice("data.column", self.column, COLUMNS)


@dataclass(frozen=True)
class TaggerConfig(RunConfig):
    task: str = "tagger"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
