"""The classifier's configuration: the sections it owns, [model] and [data]. No torch."""

from __future__ import annotations

from dataclasses import dataclass, field

from rnnkit.config import LabelledDataSettings, RunConfig, SequenceModelSettings, choice, require
from rnnkit.data.labelled import FORMATS

POOLINGS = ("last", "max", "mean")


@dataclass(frozen=True)
class ModelConfig(SequenceModelSettings):
    embedding_size: int = 100
    hidden_size: int = 150
    dropout: float = 0.5  # between recurrent layers and on the sentence vector (training only)
    bidirectional: bool = True
    pooling: str = "max"  # the sentence vector: last (final states), max or mean over time
    word_dropout: float = 0.0  # in training, a word becomes <unk> with this probability
    embeddings_file: str = ""  # pretrained word vectors (GloVe or word2vec text format); empty: none
    freeze_embeddings: bool = False  # keep the embeddings as initialised
    embedding_init_scale: float = 0.0  # in (0, 10]: embeddings start uniform in ±scale; 0: torch's normal N(0, 1)
    adversarial: float = 0.0  # >0: also train on embeddings moved this far (L2, per sentence) up the loss gradient

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("model.pooling", self.pooling, POOLINGS)
        require(self.adversarial >= 0, "model.adversarial", "expected 0 or a positive number", self.adversarial)
        require(0 <= self.word_dropout < 1, "model.word_dropout", "expected a probability in [0, 1)", self.word_dropout)
        require(
            0 <= self.embedding_init_scale <= 10,
            "model.embedding_init_scale",
            "expected 0 or a scale up to 10",
            self.embedding_init_scale,
        )


@dataclass(frozen=True)
class DataConfig(LabelledDataSettings):
    format: str = "auto"  # auto, label (label and sentence), tsv (sentence, tab, label), trees (SST)
    phrases: bool = False  # trees: train on every labelled phrase, not only whole sentences

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("data.format", self.format, FORMATS)


@dataclass(frozen=True)
class ClassifierConfig(RunConfig):
    task: str = "classifier"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
