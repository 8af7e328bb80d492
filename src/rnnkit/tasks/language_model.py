"""The character-level language model and the task interface the trainer drives.

Dimension letters: T time, B batch (streams), E embedding size, H hidden size, L layers, V vocabulary.

    ids (T, B) -> Embedding -> (T, B, E) -> recurrent layer -> (T, B, H) -> dropout -> Linear -> logits (T, B, V)

The recurrent state at the end of each window is carried into the next (detached by the trainer),
so gradients flow back at most one window while values flow forward through the whole stream.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnkit import nn as rnn_layers
from rnnkit.config import Config, ModelConfig
from rnnkit.data.corpus import LanguageCorpus
from rnnkit.data.streams import TokenStreams, Window
from rnnkit.generate import generate_text

EVALUATION_WINDOW = 256  # steps per forward call when evaluating: the result does not depend on it


def build_recurrent_layer(model: ModelConfig, input_size: int) -> nn.Module:
    """The rnnkit.nn layer (any cell, any variant) the model config describes, time-major."""
    layer = {"rnn": rnn_layers.RNN, "lstm": rnn_layers.LSTM, "gru": rnn_layers.GRU}[model.cell]
    between_layers = model.dropout if model.num_layers > 1 else 0.0
    return layer(input_size, model.hidden_size, num_layers=model.num_layers, dropout=between_layers,
                 **model.cell_spec().keywords())


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
    return {"nll": nll, "bpc": nll / math.log(2), "perplexity": math.exp(nll), "tokens": count}


class TorchEngine:
    """Step-by-step generation with the torch model: feed token ids, get the next token's logits."""

    def __init__(self, model: LanguageModel, device: torch.device) -> None:
        self.model, self.device = model.eval(), device
        self.reset()

    def reset(self) -> None:
        self.state = self.model.initial_state(1, self.device)

    @torch.no_grad()
    def feed(self, ids: list[int]) -> np.ndarray:
        inputs = torch.tensor(ids, dtype=torch.long, device=self.device).reshape(-1, 1)  # (T, 1)
        logits, self.state = self.model(inputs, self.state)  # (T, 1, V)
        return logits[-1, 0].double().cpu().numpy()  # (V,)


class LanguageModelTask:
    """What the trainer needs from a task (see rnnkit.train.trainer.Task), for language modelling."""

    def __init__(self, config: Config, corpus: LanguageCorpus, device: torch.device) -> None:
        self.config, self.corpus, self.device = config, corpus, device
        self.model = LanguageModel(len(corpus.vocabulary), config.model).to(device)
        self.streams = TokenStreams(corpus.train_ids, config.train.batch_size, config.train.window)

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
        limit = self.config.train.eval_tokens
        ids = self.corpus.validation_ids[: limit + 1] if limit else self.corpus.validation_ids
        batch_size = min(self.config.train.eval_batch_size, len(ids) - 1)
        metrics = evaluate_language_model(self.model, ids, self.device, batch_size)
        return {"loss": metrics["nll"], **metrics, "batch_size": batch_size}

    def sample(self, seed: int) -> str:
        """The [sample] settings' prime and continuation; the model is left in training mode."""
        settings = self.config.sample
        text = generate_text(TorchEngine(self.model, self.device), self.corpus.vocabulary, settings.prime, settings, seed)
        self.model.train()
        return text
