"""The language model in PyTorch: the network, its loss over TBPTT windows, its evaluation, and the
step function that sampling drives.

Dimension letters: T time, B batch (streams), E embedding size, H hidden size, L layers, V vocabulary.

    ids (T, B) -> Embedding -> (T, B, E) -> recurrent layer -> (T, B, H) -> dropout -> Linear -> logits (T, B, V)

The recurrent state at the end of each window is carried into the next (detached by the trainer),
so gradients flow back at most one window while values flow forward through the whole stream.
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnkit.data.corpus import LanguageCorpus, load_evaluation_ids, load_language_corpus
from rnnkit.data.streams import TokenStreams, Window
from rnnkit.data.text import PACKAGED_CORPORA, resolve_corpus
from rnnkit.data.vocabulary import Vocabulary
from rnnkit.device import resolve_device, use_threads
from rnnkit.generate import generate_text
from rnnkit.rundir import VOCABULARY
from rnnkit.tasks.language_model import LanguageModelConfig, ModelConfig
from rnnkit.tasks.shared_torch import build_recurrent_layer
from rnnkit.train.checkpoint import load_model_weights

EVALUATION_WINDOW = 256  # steps per forward call when evaluating: the result does not depend on it


class LanguageModel(nn.Module):
    def __init__(self, vocabulary_size: int, model: ModelConfig) -> None:
        super().__init__()
        self.config = model
        self.embedding = nn.Embedding(vocabulary_size, model.embedding_size)
        self.embedding_dropout = nn.Dropout(model.embedding_dropout)
        self.rnn = build_recurrent_layer(model, model.embedding_size)
        self.dropout = nn.Dropout(model.dropout)
        self.decoder = nn.Linear(model.hidden_size, vocabulary_size)
        if model.tie_weights:
            self.decoder.weight = self.embedding.weight  # (V, E) with E == H

    def initial_state(self, batch_size: int, device: torch.device) -> dict[str, Tensor]:
        shape = (self.config.num_layers, batch_size, self.config.hidden_size)  # (L, B, H)
        names = ("h", "c") if self.config.cell == "lstm" else ("h",)
        return {name: torch.zeros(shape, device=device) for name in names}

    def forward(self, ids: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        embedded = self.embedding_dropout(self.embedding(ids))  # (T, B, E)
        hx = (state["h"], state["c"]) if "c" in state else state["h"]
        output, final = self.rnn(embedded, hx)  # (T, B, H); (L, B, H) each
        logits = self.decoder(self.dropout(output))  # (T, B, V)
        new_state = {"h": final[0], "c": final[1]} if "c" in state else {"h": final}
        return logits, new_state


def window_loss(model: LanguageModel, window: Window, state: dict[str, Tensor], device: torch.device):
    """Summed cross-entropy (nats) over a window, the number of predictions, and the final state."""
    inputs = torch.from_numpy(window.inputs).to(device)  # (T, B)
    targets = torch.from_numpy(window.targets).to(device)  # (T, B)
    logits, state = model(inputs, state)  # (T, B, V)
    total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum")
    return total, targets.numel(), state


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
        window_total, window_count, state = window_loss(model, streams.next_window(), state, device)
        total, count = total + float(window_total), count + window_count  # float64 sum across windows
    model.train(was_training)
    nll = total / count
    perplexity = math.exp(nll) if nll < 700 else math.inf
    return {"nll": nll, "bpc": nll / math.log(2), "perplexity": perplexity, "tokens": count}


def torch_step_function(model: LanguageModel, device: torch.device):
    """Sampling's view of the model: step(ids, state) -> (logits of the next token (V,), new state);
    state None is the zero state. Nothing is kept between calls."""

    @torch.no_grad()
    def step(ids: list[int], state):
        state = model.initial_state(1, device) if state is None else state
        inputs = torch.tensor(ids, dtype=torch.long, device=device).reshape(-1, 1)  # (T, 1)
        logits, state = model(inputs, state)  # (T, 1, V)
        return logits[-1, 0].double().cpu().numpy(), state  # (V,)

    return step


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
    vocabulary = Vocabulary.load(run_path / VOCABULARY) if run_path else None
    if run_path is None:
        config = absolute_data_paths(config)
    corpus = load_language_corpus(config.data.corpus, config.data.validation, config.data.train_fraction,
                                  config.data.tokenizer, *training_minimum(config), vocabulary=vocabulary)
    return config, corpus


class LanguageModelTraining:
    """What the trainer needs from a task (see rnnkit.train.trainer.Task), for language modelling."""

    best_metric, higher_is_better, count_unit = "nll", False, "tokens"

    def __init__(self, config: LanguageModelConfig, corpus: LanguageCorpus, device: torch.device) -> None:
        self.config, self.corpus, self.device = config, corpus, device
        self.model = LanguageModel(len(corpus.vocabulary), config.model).to(device)
        self.streams = TokenStreams(corpus.train_ids, config.train.batch_size, config.data.window)
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
        """Mean cross-entropy of the window, its token count, and the state to carry on."""
        if batch.starts_epoch:
            carry = self.initial_carry()  # streams restart from their beginnings: nothing to carry
        total, count, carry = window_loss(self.model, batch, carry, self.device)
        return total / count, count, carry

    def evaluate(self) -> dict:
        """Validation during training: eval_batch_size streams (for speed), at most eval_tokens tokens."""
        limit = self.config.data.eval_tokens
        ids = self.corpus.validation_ids[: limit + 1] if limit else self.corpus.validation_ids
        batch_size = min(self.config.train.eval_batch_size, len(ids) - 1)
        metrics = evaluate_language_model(self.model, ids, self.device, batch_size)
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


def evaluate_run(run, checkpoint: Path, data_path: str | None) -> dict:
    """{"nll", "bpc", "perplexity", "tokens"} on a text (default: the run's validation text), batch 1."""
    config = run.config
    vocabulary = Vocabulary.load(run.path / VOCABULARY)
    if data_path:
        ids = load_evaluation_ids(data_path, vocabulary)
    else:
        ids = load_language_corpus(config.data.corpus, config.data.validation, config.data.train_fraction,
                                   config.data.tokenizer, 1, "evaluation", vocabulary=vocabulary).validation_ids
    model, device = load_model(run, checkpoint, vocabulary)
    return evaluate_language_model(model, ids, device, batch_size=1)
