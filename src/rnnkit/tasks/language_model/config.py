"""The language model's configuration: the sections it owns ([model], [data] with the truncated-BPTT
window, and [sample]) and the reading of config records from before tasks existed. No torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from rnnkit.config import RunConfig, Section, SequenceModelSettings, choice, require


@dataclass(frozen=True)
class ModelConfig(SequenceModelSettings):
    tie_weights: bool = False  # decoder shares the embedding matrix, or the adaptive softmax embeds the input too
    # (either needs the last layer's size == embedding_size)
    hidden_sizes: tuple[int, ...] = ()  # one hidden size per layer (AWD-LSTM's last layer has the embedding size)
    hidden_dropout: float = -1.0  # between layers; -1: the same as model.dropout
    locked_dropout: bool = False  # embedding, hidden and output dropout with one mask per sequence (variational)
    token_dropout: float = 0.0  # drop whole word types from the embedding matrix (AWD's dropoute)
    weight_drop: float = 0.0  # DropConnect on every weight_hh (AWD's wdrop)
    softmax: str = "full"  # full, or adaptive (torch.nn.AdaptiveLogSoftmaxWithLoss over model.cutoffs)
    cutoffs: tuple[int, ...] = ()  # adaptive softmax: increasing token-id cutoffs of its clusters
    div_value: float = 4.0  # adaptive softmax: cluster i (from 0) projects to size // div_value^(i+1) dimensions
    ar: float = 0.0  # activation regularisation α: α · mean(y_t²) of the last layer's dropped-out output
    tar: float = 0.0  # temporal activation regularisation β: β · mean((h_t − h_{t−1})²) of its raw output

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            not self.hidden_sizes or len(self.hidden_sizes) == self.num_layers,
            "model.hidden_sizes",
            f"expected one size per layer (model.num_layers = {self.num_layers})",
            list(self.hidden_sizes),
        )
        require(
            all(size >= 1 for size in self.hidden_sizes),
            "model.hidden_sizes",
            "expected positive sizes",
            list(self.hidden_sizes),
        )
        require(
            self.hidden_dropout == -1 or 0 <= self.hidden_dropout < 1,
            "model.hidden_dropout",
            "expected a probability in [0, 1), or -1 (the same as model.dropout)",
            self.hidden_dropout,
        )
        for key in ("token_dropout", "weight_drop"):
            require(0 <= getattr(self, key) < 1, f"model.{key}", "expected a probability in [0, 1)", getattr(self, key))
        for key in ("ar", "tar"):
            require(getattr(self, key) >= 0, f"model.{key}", "expected 0 or more", getattr(self, key))
        choice("model.softmax", self.softmax, ("full", "adaptive"))
        cutoffs = list(self.cutoffs)
        require(
            self.softmax == "full" or (cutoffs and cutoffs == sorted(set(cutoffs)) and cutoffs[0] > 0),
            "model.cutoffs",
            "the adaptive softmax needs increasing positive cutoffs, e.g. [2000, 10000]",
            cutoffs,
        )
        require(self.div_value >= 1, "model.div_value", "expected a number >= 1", self.div_value)
        require(
            self.softmax == "full" or self.projection_sizes[-1] >= 1,
            "model.div_value",
            f"the last cluster's projection would be {self.layer_sizes[-1]} // {self.div_value:g}^{len(cutoffs)}"
            " = 0 wide; lower it, use fewer cutoffs or a larger last layer",
            self.div_value,
        )
        require(
            not self.tie_weights or self.layer_sizes[-1] == self.embedding_size,
            "model.tie_weights",
            f"needs the last layer's size == embedding_size ({self.embedding_size})",
            self.layer_sizes[-1],
        )

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return self.hidden_sizes or (self.hidden_size,) * self.num_layers

    @property
    def projection_sizes(self) -> tuple[int, ...]:
        """The adaptive softmax's tail projections, cluster by cluster, as torch computes them."""
        return tuple(int(self.layer_sizes[-1] // self.div_value ** (i + 1)) for i in range(len(self.cutoffs)))

    @property
    def tied_adaptive(self) -> bool:
        """Tied weights with an adaptive softmax: the softmax's own weights embed the input too."""
        return self.tie_weights and self.softmax == "adaptive"

    @property
    def between_layers(self) -> float:
        return self.dropout if self.hidden_dropout == -1 else self.hidden_dropout

    @property
    def per_layer(self) -> bool:
        """One module per layer: layers of different sizes, or variational dropout between them."""
        return bool(self.hidden_sizes) or (self.locked_dropout and self.num_layers > 1)


@dataclass(frozen=True)
class DataConfig(Section):
    name: ClassVar[str] = "data"
    corpus: str = "tinyshakespeare"  # a text file, or the name of a corpus shipped with rnnkit
    validation: str = ""  # a separate validation file; empty: the corpus's last (1 - train_fraction)
    train_fraction: float = 0.9
    tokenizer: str = "char"  # char, word (with <eos> at line ends), or bpe (byte-level, learned from the corpus)
    min_count: int = 1  # word: a word seen fewer times in the corpus is <unk>
    max_vocabulary: int = 0  # word: at most this many words, <unk> included; 0: no limit
    bpe_vocabulary: int = 8000  # bpe: the vocabulary size to learn
    window: int = 64  # truncated BPTT length: gradients flow back at most this many steps
    variable_window: bool = False  # AWD-LSTM's variable-length windows around data.window (lr scaled by length)
    eval_tokens: int = 0  # the periodic validation reads at most this many tokens; 0: all of them

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            0 < self.train_fraction < 1, "data.train_fraction", "expected a fraction in (0, 1)", self.train_fraction
        )
        choice("data.tokenizer", self.tokenizer, ("char", "word", "bpe"))
        require(self.min_count >= 1, "data.min_count", "expected a positive integer", self.min_count)
        require(
            self.max_vocabulary == 0 or self.max_vocabulary >= 2,
            "data.max_vocabulary",
            "expected 0 (no limit) or at least 2",
            self.max_vocabulary,
        )
        require(
            self.bpe_vocabulary >= 260,
            "data.bpe_vocabulary",
            "expected at least 260 (256 bytes and merges)",
            self.bpe_vocabulary,
        )
        require(self.window >= 1, "data.window", "expected a positive integer", self.window)
        require(self.eval_tokens >= 0, "data.eval_tokens", "expected 0 (all) or more", self.eval_tokens)


@dataclass(frozen=True)
class SampleConfig(Section):
    name: ClassVar[str] = "sample"
    length: int = 500  # tokens to generate after the prime
    temperature: float = 1.0  # 0 is greedy
    top_k: int = 0  # keep the k most likely tokens; 0: all
    top_p: float = 1.0  # keep the smallest set of tokens whose probability reaches p
    prime: str = ""  # text to start from; empty: start after a newline
    every: int = 0  # during training: steps between samples written to samples.txt; 0: none

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.length >= 0, "sample.length", "expected 0 or more", self.length)
        require(self.temperature >= 0, "sample.temperature", "expected 0 or more", self.temperature)
        require(self.top_k >= 0, "sample.top_k", "expected 0 (off) or more", self.top_k)
        require(0 < self.top_p <= 1, "sample.top_p", "expected a probability in (0, 1]", self.top_p)
        require(self.every >= 0, "sample.every", "expected 0 (never) or more", self.every)


@dataclass(frozen=True)
class LanguageModelConfig(RunConfig):
    task: str = "language_model"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)


# Keys that moved from [train] to the language model's own sections when tasks were introduced.
MOVED_KEYS = {
    ("train", "window"): ("data", "window"),
    ("train", "eval_tokens"): ("data", "eval_tokens"),
    ("train", "sample_every"): ("sample", "every"),
}


def upgrade_record(record: dict) -> dict:
    """A config record from before tasks existed (no `task` key), in today's layout."""
    if "task" in record:
        return record
    record = {section: dict(values) if isinstance(values, dict) else values for section, values in record.items()}
    for (old_section, old_key), (new_section, new_key) in MOVED_KEYS.items():
        if isinstance(record.get(old_section), dict) and old_key in record[old_section]:
            record.setdefault(new_section, {})[new_key] = record[old_section].pop(old_key)
    return {"task": "language_model", **record}
