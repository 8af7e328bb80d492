"""The language model in PyTorch: the network, its loss over TBPTT windows, its evaluation, and the
step function that sampling drives.

Dimension letters: T time, B batch (streams), E embedding size, H hidden size (of a layer),
L layers, V vocabulary.

    ids (T, B) -> Embedding -> (T, B, E) -> dropout -> recurrent layers -> (T, B, H) -> dropout
        -> Linear -> logits (T, B, V), or an adaptive softmax's log-probabilities

The recurrent layers are one rnnkit.nn module (`rnn.*`), or one module per layer (`layers.K.*`) when
they differ in size or have variational dropout between them. AWD-LSTM's regularisers are options
(rnnkit.nn.regularisers): variational dropout, dropped word types, DropConnect on the recurrent
weights, and AR/TAR in the loss. The recurrent state at the end of each window is carried into the
next (detached by the trainer), so gradients flow back at most one window while values flow forward
through the whole stream.
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnkit.data.corpus import (
    LanguageCorpus, build_vocabulary, corpus_minimum, load_evaluation_ids, load_language_corpus,
)
from rnnkit.data.streams import TokenStreams, Window
from rnnkit.data.text import PACKAGED_CORPORA, resolve_corpus
from rnnkit.data.vocabulary import Vocabulary
from rnnkit.device import resolve_device, use_threads
from rnnkit.errors import UsageError
from rnnkit.generate import generate_text
from rnnkit.nn.regularisers import LockedDropout, embedding_dropout
from rnnkit.rundir import VOCABULARY
from rnnkit.tasks.language_model import LanguageModelConfig, ModelConfig
from rnnkit.tasks.shared_torch import build_recurrent_layer
from rnnkit.train.checkpoint import load_model_weights

EVALUATION_WINDOW = 256  # steps per forward call when evaluating: the result does not depend on it


class LanguageModel(nn.Module):
    def __init__(self, vocabulary_size: int, model: ModelConfig) -> None:
        super().__init__()
        self.config = model
        sizes = model.layer_sizes
        dropout = LockedDropout if model.locked_dropout else nn.Dropout
        self.vocabulary_size = vocabulary_size
        if not model.tied_adaptive:  # else the adaptive softmax's own weights embed the input (embed())
            self.embedding = nn.Embedding(vocabulary_size, model.embedding_size)
        self.embedding_dropout = dropout(model.embedding_dropout)
        if model.per_layer:
            inputs = (model.embedding_size, *sizes[:-1])
            self.layers = nn.ModuleList(build_recurrent_layer(model, size_in, hidden_size=size, num_layers=1,
                                                              weight_drop=model.weight_drop)
                                        for size_in, size in zip(inputs, sizes))
            self.hidden_dropout = dropout(model.between_layers)
        else:
            self.rnn = build_recurrent_layer(model, model.embedding_size, between_layers=model.between_layers,
                                             weight_drop=model.weight_drop)
        self.dropout = dropout(model.dropout)
        if model.softmax == "adaptive":
            self.adaptive = nn.AdaptiveLogSoftmaxWithLoss(sizes[-1], vocabulary_size, list(model.cutoffs),
                                                         div_value=model.div_value)
        else:
            self.decoder = nn.Linear(sizes[-1], vocabulary_size)
            if model.tie_weights:
                self.decoder.weight = self.embedding.weight  # (V, E) with E == the last layer's size

    def initial_state(self, batch_size: int, device: torch.device) -> dict[str, Tensor]:
        """Zeros: {"h", "c"} of shape (L, B, H) for one module, {"h.K", "c.K"} of (1, B, H_K) per layer."""
        names = ("h", "c") if self.config.cell == "lstm" else ("h",)
        if not self.config.per_layer:
            shape = (self.config.num_layers, batch_size, self.config.hidden_size)  # (L, B, H)
            return {name: torch.zeros(shape, device=device) for name in names}
        return {f"{name}.{k}": torch.zeros(1, batch_size, size, device=device)
                for k, size in enumerate(self.config.layer_sizes) for name in names}

    def hidden(self, ids: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """(the last layer's output after dropout (T, B, H), before dropout, the new state)."""
        x = self.embedding_dropout(self.embed(ids))
        if not self.config.per_layer:
            output, new_state = self.run_layer(self.rnn, x, state, "")
        else:
            new_state = {}
            for k, layer in enumerate(self.layers):
                output, final = self.run_layer(layer, x, state, f".{k}")
                new_state |= final
                x = self.hidden_dropout(output) if k < len(self.layers) - 1 else output
        return self.dropout(output), output, new_state

    def embed(self, ids: Tensor) -> Tensor:
        """The input vectors (T, B, E) of ids (T, B), with whole word types dropped in training
        (model.token_dropout). With tied weights and an adaptive softmax, word w's vector is read from
        the softmax: the head's row w in the shortlist, else the row of w in its cluster's output
        matrix taken back through that cluster's projection (tail.i.1.weight[w - start] @ tail.i.0.weight)."""
        p = self.config.token_dropout
        if not self.config.tied_adaptive:
            return embedding_dropout(self.embedding, ids, p, self.training)
        adaptive, flat = self.adaptive, ids.reshape(-1)
        vectors = adaptive.head.weight.new_zeros(len(flat), adaptive.in_features)  # (T*B, E)
        starts = adaptive.cutoffs  # [shortlist, cluster starts..., V]
        rows = flat < starts[0]
        vectors[rows] = adaptive.head.weight[flat[rows]]
        for i, (start, stop) in enumerate(zip(starts[:-1], starts[1:])):
            rows = (flat >= start) & (flat < stop)
            projection, output = adaptive.tail[i]
            vectors[rows] = output.weight[flat[rows] - start] @ projection.weight
        if self.training and p:
            kept = vectors.new_empty(self.vocabulary_size).bernoulli_(1 - p) / (1 - p)  # (V,): one draw per word type
            vectors = vectors * kept[flat, None]
        return vectors.reshape(*ids.shape, -1)

    @staticmethod
    def run_layer(layer: nn.Module, x: Tensor, state: dict[str, Tensor], suffix: str):
        hx = (state["h" + suffix], state["c" + suffix]) if "c" + suffix in state else state["h" + suffix]
        output, final = layer(x, hx)  # (T, B, H)
        return output, ({"h" + suffix: final[0], "c" + suffix: final[1]} if isinstance(final, tuple)
                        else {"h" + suffix: final})

    def scores(self, output: Tensor) -> Tensor:
        """Next-token scores (T, B, V) whose softmax is the model's distribution: logits, or log-probabilities."""
        if self.config.softmax == "adaptive":
            return self.adaptive.log_prob(output.reshape(-1, output.shape[-1])).reshape(*output.shape[:-1], -1)
        return self.decoder(output)

    def nll(self, output: Tensor, targets: Tensor) -> Tensor:
        """The summed negative log-likelihood (nats) of the targets (T, B) given the outputs (T, B, H)."""
        flat = output.reshape(-1, output.shape[-1])
        if self.config.softmax == "adaptive":
            return -self.adaptive(flat, targets.reshape(-1)).output.sum()
        return F.cross_entropy(self.decoder(flat), targets.reshape(-1), reduction="sum")

    def forward(self, ids: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        output, _, state = self.hidden(ids, state)
        return self.scores(output), state


def window_loss(model: LanguageModel, window: Window, state: dict[str, Tensor], device: torch.device):
    """Summed cross-entropy (nats) over a window, the number of predictions, the final state, and the
    last layer's outputs after and before dropout (for AR and TAR)."""
    inputs = torch.from_numpy(window.inputs).to(device)  # (T, B)
    targets = torch.from_numpy(window.targets).to(device)  # (T, B)
    output, raw, state = model.hidden(inputs, state)  # (T, B, H)
    return model.nll(output, targets), targets.numel(), state, output, raw


def activation_regularisation(model: ModelConfig, output: Tensor, raw: Tensor) -> Tensor | float:
    """AR = α · mean(y_t²) over the dropped-out output; TAR = β · mean((h_t − h_{t−1})²) over the raw one."""
    penalty = 0.0
    if model.ar:
        penalty = penalty + model.ar * output.pow(2).mean()
    if model.tar and raw.shape[0] > 1:
        penalty = penalty + model.tar * (raw[1:] - raw[:-1]).pow(2).mean()
    return penalty


@torch.no_grad()
def evaluate_language_model(model: LanguageModel, ids: np.ndarray, device: torch.device, batch_size: int = 1) -> dict:
    """The EQUATIONS.md protocol: the text as one stream per batch row, state carried, never reset.

    nll is the mean negative log-likelihood in nats per predicted token, bpc = nll / ln 2,
    perplexity = exp(nll). Reported numbers use batch_size 1 (the whole text as one stream).
    """
    was_training = model.training
    model.eval()
    streams = TokenStreams(ids, batch_size, EVALUATION_WINDOW)
    state = model.initial_state(batch_size, device)
    total, count = 0.0, 0
    for _ in range(streams.windows_per_epoch):
        window_total, window_count, state, _, _ = window_loss(model, streams.next_window(), state, device)
        total, count = total + float(window_total), count + window_count  # float64 sum across windows
    model.train(was_training)
    nll = total / count
    perplexity = math.exp(nll) if nll < 700 else math.inf
    return {"nll": nll, "bpc": nll / math.log(2), "perplexity": perplexity, "tokens": count}


def torch_step_function(model: LanguageModel, device: torch.device):
    """Sampling's view of the model: step(ids, state) -> (scores of the next token (V,), new state),
    scores whose softmax is the model's distribution; state None is the zero state. Nothing is kept
    between calls."""

    @torch.no_grad()
    def step(ids: list[int], state):
        state = model.initial_state(1, device) if state is None else state
        inputs = torch.tensor(ids, dtype=torch.long, device=device).reshape(-1, 1)  # (T, 1)
        output, _, state = model.hidden(inputs, state)  # (T, 1, H)
        return model.scores(output[-1:])[0, 0].double().cpu().numpy(), state  # (V,)

    return step


@torch.no_grad()
def line_log_probabilities(model: LanguageModel, device: torch.device, lines: list[list[int]], start: list[int],
                           carry: bool):
    """Yield the summed natural-log probability of each line's token ids, each from a fresh state
    after the start tokens, or (carry) with the state and the last token carried from line to line."""
    state, previous = None, start
    for ids in lines:
        if not carry or state is None:
            state, previous = model.initial_state(1, device), start
            if len(start) > 1:  # all but the last start token only set up the state
                _, _, state = model.hidden(torch.tensor(start[:-1], device=device).reshape(-1, 1), state)
                previous = start[-1:]
        inputs = [previous[-1], *ids[:-1]]
        total = 0.0
        for begin in range(0, len(ids), EVALUATION_WINDOW):
            window = torch.tensor(inputs[begin:begin + EVALUATION_WINDOW], device=device).reshape(-1, 1)  # (T, 1)
            targets = torch.tensor(ids[begin:begin + EVALUATION_WINDOW], device=device)
            output, _, state = model.hidden(window, state)
            total -= float(model.nll(output, targets.reshape(-1, 1)))
        previous = ids
        yield total


# ---- the run lifecycle's hooks ---------------------------------------------------------------------
def training_minimum(config: LanguageModelConfig) -> tuple[int, str]:
    """The fewest training tokens that fill one window of every stream, and why."""
    batch, window = config.train.batch_size, config.data.window
    return batch * window + 1, f"batch_size {batch} × window {window} + 1 for training"


def absolute_data_paths(config: LanguageModelConfig) -> LanguageModelConfig:
    """Data files as absolute paths, so the run can be resumed or evaluated from any directory."""
    values = {}
    for key in ("corpus", "validation"):
        value = getattr(config.data, key)
        if value and not (value in PACKAGED_CORPORA and not Path(value).exists()):
            values[key] = str(resolve_corpus(value))
    return replace(config, data=replace(config.data, **values))


def prepare(config: LanguageModelConfig, run_path: Path | None) -> tuple[LanguageModelConfig, LanguageCorpus]:
    """Read and check the corpus; a new run builds its vocabulary, an existing one reads its own."""
    data = config.data
    if run_path is None:
        config = absolute_data_paths(config)
        data = config.data
        minimum = corpus_minimum(*training_minimum(config), data.validation, data.train_fraction)
        vocabulary = build_vocabulary(data.tokenizer, data.corpus, data.validation, data.min_count,
                                      data.max_vocabulary, data.bpe_vocabulary, minimum)
    else:
        vocabulary = Vocabulary.load(run_path / VOCABULARY)
    if config.model.softmax == "adaptive" and config.model.cutoffs[-1] >= len(vocabulary):
        raise UsageError(f"model.cutoffs: the last cutoff ({config.model.cutoffs[-1]}) must be below the vocabulary "
                         f"size ({len(vocabulary)})")
    corpus = load_language_corpus(data.corpus, data.validation, data.train_fraction, vocabulary,
                                  *training_minimum(config))
    return config, corpus


class LanguageModelTraining:
    """What the trainer needs from a task (see rnnkit.train.trainer.Task), for language modelling."""

    best_metric, higher_is_better, count_unit = "nll", False, "tokens"

    def __init__(self, config: LanguageModelConfig, corpus: LanguageCorpus, device: torch.device) -> None:
        self.config, self.corpus, self.device = config, corpus, device
        self.model = LanguageModel(len(corpus.vocabulary), config.model).to(device)
        self.streams = TokenStreams(corpus.train_ids, config.train.batch_size, config.data.window,
                                    variable=config.data.variable_window, seed=config.train.seed)
        self.sample_every = config.sample.every

    @property
    def epochs_done(self) -> float:
        return self.streams.epochs_done

    def data_position(self) -> dict:
        return self.streams.position()

    def restore_data_position(self, position: dict) -> None:
        self.streams.restore(position)

    def initial_carry(self) -> dict[str, Tensor]:
        return self.model.initial_state(self.config.train.batch_size, self.device)

    def next_batch(self) -> Window:
        return self.streams.next_window()

    def loss(self, batch: Window, carry: dict[str, Tensor]) -> tuple[Tensor, int, dict[str, Tensor]]:
        """Mean cross-entropy of the window (plus AR and TAR), its token count, and the state to carry on."""
        if batch.starts_epoch:
            carry = self.initial_carry()  # streams restart from their beginnings: nothing to carry
        total, count, carry, output, raw = window_loss(self.model, batch, carry, self.device)
        return total / count + activation_regularisation(self.config.model, output, raw), count, carry

    def evaluate(self) -> dict:
        """Validation during training: eval_batch_size streams (for speed), at most eval_tokens tokens."""
        limit = self.config.data.eval_tokens
        ids = self.corpus.validation_ids[: limit + 1] if limit else self.corpus.validation_ids
        batch_size = min(self.config.train.eval_batch_size, len(ids) - 1)
        metrics = evaluate_language_model(self.model, ids, self.device, batch_size)
        if self.corpus.vocabulary.tokenizer.name != "char":
            del metrics["bpc"]  # bits per character: for character models only
        return {"loss": metrics["nll"], **metrics, "batch_size": batch_size}

    def sample(self, seed: int) -> str:
        """The [sample] settings' prime and continuation; the model is left in training mode."""
        self.model.eval()
        text = generate_text(torch_step_function(self.model, self.device), self.corpus.vocabulary,
                             self.config.sample, seed)
        self.model.train()
        return text


def load_model(run, checkpoint: Path, vocabulary: Vocabulary) -> tuple[LanguageModel, torch.device]:
    """The model of a checkpoint of the run, in evaluation mode on the configured device."""
    device = resolve_device(run.config.train.device)
    use_threads(run.config.train.threads)
    model = LanguageModel(len(vocabulary), run.config.model)
    load_model_weights(model, checkpoint)
    return model.to(device).eval(), device


def load_run_model(run, which: str | None = None) -> tuple[LanguageModel, torch.device, Vocabulary]:
    """A run's model (its best checkpoint, else its latest, or the one named) in evaluation mode, with
    its device and vocabulary: what analysis tools read."""
    vocabulary = Vocabulary.load(run.path / VOCABULARY)
    return *load_model(run, run.directory.checkpoint(which), vocabulary), vocabulary


def validation_ids(config: LanguageModelConfig, vocabulary: Vocabulary) -> tuple[np.ndarray, int]:
    """The run's validation text as token ids, and how many of its tokens were read as <unk>."""
    corpus = load_language_corpus(config.data.corpus, config.data.validation, config.data.train_fraction,
                                  vocabulary, 1, "evaluation")
    return corpus.validation_ids, corpus.out_of_vocabulary


def evaluate_run(run, checkpoint: Path, data_path: str | None) -> dict:
    """{"nll", "perplexity", "tokens"} on a text (default: the run's validation text), batch 1; "bpc"
    for characters; "out_of_vocabulary" (tokens read as <unk>) where the vocabulary has <unk>."""
    config = run.config
    vocabulary = Vocabulary.load(run.path / VOCABULARY)
    if data_path:
        ids, unknown = load_evaluation_ids(data_path, vocabulary)
    else:
        ids, unknown = validation_ids(config, vocabulary)
    model, device = load_model(run, checkpoint, vocabulary)
    metrics = evaluate_language_model(model, ids, device, batch_size=1)
    if vocabulary.tokenizer.name != "char":
        del metrics["bpc"]  # bits per character: for character models only
    return metrics | ({"out_of_vocabulary": unknown} if vocabulary.unknown_token is not None else {})
