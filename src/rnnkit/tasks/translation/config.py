"""The translation task's configuration: the sections it owns, [model], [data] and its [train]. No torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from rnnkit.config import RunConfig, Section, SequenceModelSettings, TrainConfig, choice, require

ATTENTIONS = ("none", "bahdanau", "dot", "general")
TOKENIZERS = ("bpe", "word")


@dataclass(frozen=True)
class ModelConfig(SequenceModelSettings):
    """An encoder (embedding, a stacked recurrent layer, bidirectional by default) and a decoder (embedding,
    the same cell stepping one token at a time, started from a projection of the encoder's final states).
    `num_layers` is the depth of both."""

    embedding_size: int = 256  # both languages' embeddings, and the attentional vector fed to the output layer
    hidden_size: int = 256  # the encoder's, per direction
    decoder_hidden_size: int = 0  # 0: the encoder's output size (hidden_size times its directions)
    bidirectional: bool = True  # the encoder
    attention: str = "general"  # none (the fixed-size bottleneck), bahdanau, dot, general
    attention_size: int = 0  # bahdanau: the size of its hidden layer; 0: the decoder's hidden size
    input_feeding: bool = True  # dot and general: the previous attentional vector joins the decoder's input
    dropout: float = 0.3  # on the embeddings, between layers and on the attentional vector
    tie_embeddings: bool = True  # the output layer's weights are the target embedding
    label_smoothing: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("model.attention", self.attention, ATTENTIONS)
        for key in ("decoder_hidden_size", "attention_size"):
            require(getattr(self, key) >= 0, f"model.{key}", "expected 0 or a positive integer", getattr(self, key))
        require(
            0 <= self.label_smoothing < 1, "model.label_smoothing", "expected a number in [0, 1)", self.label_smoothing
        )
        if self.attention == "dot":
            require(
                self.decoder_hidden_size in (0, self.encoder_output_size),
                "model.decoder_hidden_size",
                f"dot attention compares the decoder's state with the encoder's outputs of size "
                f"{self.encoder_output_size}: leave it at 0 or set that size",
                self.decoder_hidden_size,
            )

    @property
    def encoder_output_size(self) -> int:
        return self.hidden_size * (2 if self.bidirectional else 1)

    @property
    def decoder_size(self) -> int:
        return self.decoder_hidden_size or self.encoder_output_size

    @property
    def feeds_back(self) -> bool:
        """Whether a decoder step's input depends on the previous step's result beyond its token: then
        training steps through time, else the decoder's layer reads the whole target at once."""
        return self.attention == "bahdanau" or (self.attention in ("dot", "general") and self.input_feeding)


@dataclass(frozen=True)
class DataConfig(Section):
    """Parallel text: `train` (and `validation`) is either a TSV file of source<TAB>target lines or a
    prefix of two line-aligned files, PREFIX.source and PREFIX.target (e.g. train.de and train.en)."""

    name: ClassVar[str] = "data"
    train: str = ""  # --data
    validation: str = ""  # --val; empty: the training pairs' last ones
    train_fraction: float = 0.95  # without validation data: the first fraction of the pairs trains
    source: str = ""  # the source language's file suffix, e.g. "de" (a prefix needs both)
    target: str = ""  # the target language's file suffix, e.g. "en"
    tokenizer: str = "bpe"  # bpe (byte-level, learnt from the training text) or word (whitespace)
    joint_vocabulary: bool = False  # bpe: one tokenizer and vocabulary learnt from both languages
    vocabulary_size: int = 8000  # bpe: tokens per tokenizer; word: at most this many words (0: all)
    min_count: int = 1  # word: a word seen fewer times in training is <unk>
    lowercase: bool = False
    max_length: int = 100  # tokens of a sentence: a longer one is truncated (and counted)

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("data.tokenizer", self.tokenizer, TOKENIZERS)
        require(
            0 < self.train_fraction < 1, "data.train_fraction", "expected a fraction in (0, 1)", self.train_fraction
        )
        require(1 <= self.max_length <= 100_000, "data.max_length", "expected 1 to 100000 tokens", self.max_length)
        require(self.min_count >= 1, "data.min_count", "expected a positive integer", self.min_count)
        require(
            self.vocabulary_size == 0 or 300 <= self.vocabulary_size <= 1_000_000,
            "data.vocabulary_size",
            "expected 300 to 1000000 (0: every word, for word tokens)",
            self.vocabulary_size,
        )
        require(
            self.tokenizer == "word" or self.vocabulary_size > 0,
            "data.vocabulary_size",
            "a BPE tokenizer needs a size",
            self.vocabulary_size,
        )
        for key in ("source", "target"):
            value = getattr(self, key)
            require(
                value == "" or (value.isprintable() and "/" not in value and "\\" not in value and len(value) <= 20),
                f"data.{key}",
                "expected a file suffix such as de or en",
                value,
            )
        require(
            not self.source or self.source != self.target,
            "data.target",
            "expected another suffix than data.source",
            self.target,
        )


@dataclass(frozen=True)
class TranslationTrainConfig(TrainConfig):
    teacher_forcing: float = 1.0  # the probability that a training step feeds the reference token, not the model's

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            0 <= self.teacher_forcing <= 1,
            "train.teacher_forcing",
            "expected a probability in [0, 1]",
            self.teacher_forcing,
        )


@dataclass(frozen=True)
class TranslationConfig(RunConfig):
    task: str = "translation"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TranslationTrainConfig = field(default_factory=TranslationTrainConfig)
