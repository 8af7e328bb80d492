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

import copy
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnkit.data.corpus import LanguageCorpus
from rnnkit.data.streams import TokenStreams, Window
from rnnkit.data.vocabulary import Vocabulary
from rnnkit.export import Exported, traceable
from rnnkit.generate import generate_text
from rnnkit.nn.interop import to_torch
from rnnkit.nn.regularisers import LockedDropout, embedding_dropout
from rnnkit.tasks.language_model.config import LanguageModelConfig, ModelConfig
from rnnkit.tasks.language_model.data import load_vocabulary
from rnnkit.tasks.language_model.metrics import BEST_METRIC, HIGHER_IS_BETTER, language_model_metrics
from rnnkit.tasks.torch_layers import build_recurrent_layer, load_model

EVALUATION_WINDOW = 256  # steps per forward call when evaluating: the result does not depend on it


class LanguageModel(nn.Module):
    def __init__(self, vocabulary_size: int, architecture: ModelConfig) -> None:
        super().__init__()
        self.config = architecture
        sizes = architecture.layer_sizes
        dropout = LockedDropout if architecture.locked_dropout else nn.Dropout
        self.vocabulary_size = vocabulary_size
        if not architecture.tied_adaptive:  # else the adaptive softmax's own weights embed the input (embed())
            self.embedding = nn.Embedding(vocabulary_size, architecture.embedding_size)
        self.embedding_dropout = dropout(architecture.embedding_dropout)
        if architecture.per_layer:
            inputs = (architecture.embedding_size, *sizes[:-1])
            self.layers = nn.ModuleList(
                build_recurrent_layer(
                    architecture, size_in, hidden_size=size, num_layers=1, weight_drop=architecture.weight_drop
                )
                for size_in, size in zip(inputs, sizes)
            )
            self.hidden_dropout = dropout(architecture.between_layers)
        else:
            self.rnn = build_recurrent_layer(
                architecture,
                architecture.embedding_size,
                between_layers=architecture.between_layers,
                weight_drop=architecture.weight_drop,
            )
        self.dropout = dropout(architecture.dropout)
        if architecture.softmax == "adaptive":
            self.adaptive = nn.AdaptiveLogSoftmaxWithLoss(
                sizes[-1], vocabulary_size, list(architecture.cutoffs), div_value=architecture.div_value
            )
        else:
            self.decoder = nn.Linear(sizes[-1], vocabulary_size)
            if architecture.tie_weights:
                self.decoder.weight = self.embedding.weight  # (V, E) with E == the last layer's size

    def initial_state(self, batch_size: int, device: torch.device) -> dict[str, Tensor]:
        """Zeros: {"h", "c"} of shape (L, B, H) for one module, {"h.K", "c.K"} of (1, B, H_K) per layer."""
        names = ("h", "c") if self.config.cell == "lstm" else ("h",)
        if not self.config.per_layer:
            shape = (self.config.num_layers, batch_size, self.config.hidden_size)  # (L, B, H)
            return {name: torch.zeros(shape, device=device) for name in names}
        return {
            f"{name}.{k}": torch.zeros(1, batch_size, size, device=device)
            for k, size in enumerate(self.config.layer_sizes)
            for name in names
        }

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
        return output, (
            {"h" + suffix: final[0], "c" + suffix: final[1]} if isinstance(final, tuple) else {"h" + suffix: final}
        )

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


def activation_regularisation(architecture: ModelConfig, output: Tensor, raw: Tensor) -> Tensor | float:
    """AR = α · mean(y_t²) over the dropped-out output; TAR = β · mean((h_t − h_{t−1})²) over the raw one."""
    penalty = 0.0
    if architecture.ar:
        penalty = penalty + architecture.ar * output.pow(2).mean()
    if architecture.tar and raw.shape[0] > 1:
        penalty = penalty + architecture.tar * (raw[1:] - raw[:-1]).pow(2).mean()
    return penalty


@torch.no_grad()
def evaluate_language_model(
    model: LanguageModel, ids: np.ndarray, device: torch.device, batch_size: int = 1, characters: bool = True
) -> dict:
    """The protocol of EQUATIONS.md ("Language models and their evaluation"): the text as one stream per
    batch row, state carried, never reset; the metrics of `language_model_metrics` (bpc for characters).
    Reported numbers use batch_size 1 (the whole text as one stream).
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
    return language_model_metrics(total, count, characters)


def step_function(model: LanguageModel, device: torch.device):
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
def line_log_probabilities(
    model: LanguageModel, device: torch.device, lines: list[list[int]], start: list[int], carry: bool
):
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
            window = torch.tensor(inputs[begin : begin + EVALUATION_WINDOW], device=device).reshape(-1, 1)  # (T, 1)
            targets = torch.tensor(ids[begin : begin + EVALUATION_WINDOW], device=device)
            output, _, state = model.hidden(window, state)
            total -= float(model.nll(output, targets.reshape(-1, 1)))
        previous = ids
        yield total


class LanguageModelTraining:
    """What the trainer drives (rnnkit.train.trainer.Training), for language modelling."""

    best_metric, higher_is_better, count_unit = BEST_METRIC, HIGHER_IS_BETTER, "tokens"

    def __init__(self, config: LanguageModelConfig, corpus: LanguageCorpus, device: torch.device) -> None:
        self.config, self.corpus, self.device = config, corpus, device
        self.model = LanguageModel(len(corpus.vocabulary), config.model).to(device)
        self.streams = TokenStreams(
            corpus.train_ids,
            config.train.batch_size,
            config.data.window,
            variable=config.data.variable_window,
            seed=config.train.seed,
        )
        self.sample_every = config.sample.every
        self.batch_size = config.train.batch_size  # the streams this process reads: the global batch, or its share
        # an adaptive softmax's clusters get no gradient in a step where no target falls in them
        self.may_skip_parameters = config.model.softmax == "adaptive"

    @property
    def epochs_done(self) -> float:
        return self.streams.epochs_done

    def data_position(self) -> dict:
        return self.streams.position()

    def restore_data_position(self, position: dict) -> None:
        self.streams.restore(position)

    def initial_carry(self) -> dict[str, Tensor]:
        return self.model.initial_state(self.batch_size, self.device)

    def shard(self, rank: int, size: int) -> None:
        self.streams.shard(rank, size)
        self.batch_size = self.streams.count

    def start_record(self) -> dict:
        return {}

    def next_batch(self) -> Window:
        return self.streams.next_window()

    def loss(self, batch: Window, carry: dict[str, Tensor]) -> tuple[Tensor, int, dict[str, Tensor]]:
        """Mean cross-entropy of the window (plus AR and TAR), its token count, and the state to carry on."""
        if batch.starts_epoch:
            carry = self.initial_carry()  # streams restart from their beginnings: nothing to carry
        total, count, carry, output, raw = window_loss(self.model, batch, carry, self.device)
        return total / count + activation_regularisation(self.config.model, output, raw), count, carry

    def validate(self) -> dict:
        """Validation during training: eval_batch_size streams (for speed), at most eval_tokens tokens."""
        limit = self.config.data.eval_tokens
        ids = self.corpus.validation_ids[: limit + 1] if limit else self.corpus.validation_ids
        batch_size = min(self.config.train.eval_batch_size, len(ids) - 1)
        metrics = evaluate_language_model(
            self.model, ids, self.device, batch_size, self.corpus.vocabulary.tokenizer.name == "char"
        )
        return {"loss": metrics["nll"], **metrics, "batch_size": batch_size}

    def generate(self, seed: int) -> str:
        """A text for samples.txt: the [sample] settings' prime and continuation; the model is left in
        training mode."""
        self.model.eval()
        text = generate_text(step_function(self.model, self.device), self.corpus.vocabulary, self.config.sample, seed)
        self.model.train()
        return text


def load_checkpoint_model(run, checkpoint: Path, vocabulary: Vocabulary) -> tuple[LanguageModel, torch.device]:
    """The model of a checkpoint of the run, in evaluation mode on the configured device."""
    return load_model(run, checkpoint, lambda: LanguageModel(len(vocabulary), run.config.model))


def model_function(run, checkpoint: Path, vocabulary: Vocabulary):
    """The checkpoint's model as sampling's step function (rnnkit.tasks.engines)."""
    return step_function(*load_checkpoint_model(run, checkpoint, vocabulary))


def load_run_model(run, which: str | None = None) -> tuple[LanguageModel, torch.device, Vocabulary]:
    """A run's model (its best checkpoint, else its latest, or the one named) in evaluation mode, with
    its device and vocabulary: what analysis tools read."""
    vocabulary = load_vocabulary(run.path)
    return *load_checkpoint_model(run, run.directory.checkpoint(which), vocabulary), vocabulary


class ExportedLanguageModel(nn.Module):
    """The language model as ONNX gets it: token ids (T, B) and the state in, the next-token
    log-probabilities (T, B, V) and the state out, with torch.nn's recurrent layers in place of
    rnnkit's (same tensors), which the exporter writes as ONNX's own operators."""

    def __init__(self, model: LanguageModel, equations: bool = False) -> None:
        super().__init__()
        self.names = list(model.initial_state(1, torch.device("cpu")))
        self.adaptive = model.config.softmax == "adaptive"
        if equations:  # a variant: rnnkit's own layers, on their equations (plain torch operations)
            self.model = copy.deepcopy(model).eval()
            for module in self.model.modules():
                if hasattr(module, "fused"):
                    module.fused = False
        else:
            self.model = to_torch(model).eval()

    def forward(self, ids: Tensor, *states: Tensor):
        scores, state = self.model(ids, dict(zip(self.names, states)))
        log_probabilities = scores if self.adaptive else torch.log_softmax(scores, dim=-1)
        return (log_probabilities, *(state[name] for name in self.names))


def exported_model(run, checkpoint: Path, vocabulary: Vocabulary) -> Exported:
    model, device = load_checkpoint_model(run, checkpoint, vocabulary)
    module, reference, rewrite = traceable(
        model, ExportedLanguageModel, lambda as_is: ExportedLanguageModel(as_is, equations=True)
    )
    sizes = {name: tensor.shape for name, tensor in model.initial_state(1, device).items()}

    def inputs(batch: int, length: int) -> tuple:
        generator = torch.Generator().manual_seed(1000 * batch + length)
        ids = torch.randint(0, len(vocabulary), (length, batch), generator=generator)
        states = [0.5 * torch.randn(shape[0], batch, shape[2], generator=generator) for shape in sizes.values()]
        return tuple(tensor.to(device) for tensor in (ids, *states))

    states_in, states_out = [f"{name}_in" for name in sizes], [f"{name}_out" for name in sizes]
    length = {0: "length"}
    return Exported(
        module,
        ["tokens", *states_in],
        ["log_probabilities", *states_out],
        {"tokens": {**length, 1: "batch"}, "log_probabilities": {**length, 1: "batch"}}
        | {name: {1: "batch"} for name in states_in + states_out},
        inputs,
        "next-token log-probabilities (length, batch, vocabulary) from token ids (length, batch), "
        f"with the state in and out ({', '.join(sizes)}: layers, batch, hidden)",
        reference=reference,
        rewrite=rewrite,
    )
