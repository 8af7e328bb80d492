"""The encoder–decoder with attention in PyTorch: the network, its training batches, loss, validation and
the decoder that rnnkit.decode searches with.

Dimension letters: S source length, T target length, B batch, E embedding size, M the encoder's output
size (its hidden size times its directions), K the decoder's hidden size, A Bahdanau's attention size,
L layers, V the target vocabulary.

    source ids (B, S) -> Embedding -> packed -> encoder layer -> memory (S, B, M), final states
    final states -> bridge: s_0 = tanh(W_b [h_fwd; h_bwd]) per layer (and c_0 likewise for an LSTM)
    step t: y_{t-1} -> Embedding -> x_t -> decoder cell -> s_t (B, K)
        attention (EQUATIONS.md, "Translation"): weights a_t over the source positions (padding masked),
        context c_t = Σ_s a_ts memory_s (B, M)
        the attentional vector o_t = tanh(W_o [s_t; c_t]) (B, E) -> Linear (the target embedding when
        tied) -> next-token logits (B, V)

`bahdanau` scores v·tanh(W_k memory + W_q s_{t-1}) with the previous state and feeds c_t into the cell's
input; `dot` (s_t·memory) and `general` (s_t·W_k memory) score with the new state, and with input feeding
the previous o_{t-1} joins the cell's input (Luong et al. 2015); `none` has no context: the source reaches
the decoder only through s_0, the fixed-size bottleneck. W_k memory is computed once per batch. When no
step's input depends on the one before (`none`, or Luong without input feeding) and every target token
is fed, the decoder's layer reads the whole target at once; otherwise it steps.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.data.batching import LengthBatches
from rnnkit.decode import search_all
from rnnkit.tasks.torch_layers import ExampleBatches, build_recurrent_layer, load_model
from rnnkit.tasks.translation.config import ModelConfig, TranslationConfig
from rnnkit.tasks.translation.data import (
    END_ID,
    MAX_LENGTH_RATIO,
    PAD_ID,
    START_ID,
    EncodedPairs,
    TranslationData,
    detokenize,
    max_target_lengths,
)
from rnnkit.tasks.translation.metrics import BEST_METRIC, HIGHER_IS_BETTER, translation_scores

DECODE_BATCH = 64  # sentences decoded together in validation


class Encoder(nn.Module):
    def __init__(self, vocabulary_size: int, architecture: ModelConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, architecture.embedding_size, padding_idx=PAD_ID)
        self.rnn = build_recurrent_layer(architecture, architecture.embedding_size, architecture.bidirectional)
        self.dropout = nn.Dropout(architecture.dropout)

    def forward(self, ids: Tensor, lengths: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
        """The memory (S, B, M) of padded source ids (B, S), zero past each length, and the final states,
        each (L*D, B, H)."""
        embedded = self.dropout(self.embedding(ids.t()))  # (S, B, E)
        packed = pack_padded_sequence(embedded, lengths.cpu(), enforce_sorted=False)
        output, state = self.rnn(packed)
        memory, _ = pad_packed_sequence(output, total_length=ids.shape[1])  # (S, B, M)
        return self.dropout(memory), tuple(state) if isinstance(state, tuple) else (state,)


class Attention(nn.Module):
    """Scores of a query against the memory, softmax over the source positions with padding masked,
    and the context they weigh (see the module's text)."""

    def __init__(self, kind: str, memory_size: int, query_size: int, attention_size: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "bahdanau":
            self.keys = nn.Linear(memory_size, attention_size, bias=False)
            self.query = nn.Linear(query_size, attention_size)
            self.v = nn.Linear(attention_size, 1, bias=False)
        elif kind == "general":
            self.keys = nn.Linear(memory_size, query_size, bias=False)

    def precompute(self, memory: Tensor) -> Tensor:
        """What the scores read of the memory (S, B, M), once per batch: (S, B, A), (S, B, K) or the memory."""
        return memory if self.kind == "dot" else self.keys(memory)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """(context (..., B, M), weights (..., B, S)) of a query (B, K), or of queries (T, B, K) for dot and
        general; mask (B, S) is True at real source positions."""
        if self.kind == "bahdanau":
            scores = self.v(torch.tanh(keys + self.query(query)[None])).squeeze(-1).t()  # (B, S)
        else:
            scores = torch.einsum("...bk,sbk->...bs", query, keys)  # (..., B, S)
        weights = torch.softmax(scores.masked_fill(~mask, -math.inf), dim=-1)  # (..., B, S): 0 on padding
        context = torch.einsum("...bs,sbm->...bm", weights, memory)  # (..., B, M)
        return context, weights


class Decoder(nn.Module):
    def __init__(self, vocabulary_size: int, architecture: ModelConfig) -> None:
        super().__init__()
        self.config = architecture
        E, M, K = architecture.embedding_size, architecture.encoder_output_size, architecture.decoder_size
        self.attention_kind = architecture.attention
        feed = {"bahdanau": M, "none": 0}.get(architecture.attention, E if architecture.input_feeding else 0)
        self.embedding = nn.Embedding(vocabulary_size, E, padding_idx=PAD_ID)
        self.rnn = build_recurrent_layer(architecture, E + feed, False, hidden_size=K)
        self.attention = (
            Attention(architecture.attention, M, K, architecture.attention_size or K)
            if architecture.attention != "none"
            else None
        )
        self.combine = nn.Linear(K + (M if self.attention is not None else 0), E)  # o_t = tanh(W_o [s_t; c_t])
        self.output = nn.Linear(E, vocabulary_size)
        if architecture.tie_embeddings:
            self.output.weight = self.embedding.weight
        self.dropout = nn.Dropout(architecture.dropout)

    def attentional(self, s: Tensor, context: Tensor | None) -> Tensor:
        return self.dropout(torch.tanh(self.combine(s if context is None else torch.cat([s, context], dim=-1))))

    def step(self, token: Tensor, hidden: tuple[Tensor, ...], feed: Tensor | None, memory, keys, mask):
        """One step from y_{t-1} (B,): (o_t (B, E), the new hidden state, the new feed, weights (B, S) or None)."""
        x = self.dropout(self.embedding(token))  # (B, E)
        context = weights = None
        if self.attention_kind == "bahdanau":
            context, weights = self.attention(hidden[0][-1], keys, memory, mask)  # from s_{t-1}: (B, M)
            x = torch.cat([x, context], dim=-1)
        elif feed is not None:
            x = torch.cat([x, feed], dim=-1)  # input feeding: o_{t-1}
        output, hidden = self.rnn(x[None], hidden if len(hidden) > 1 else hidden[0])
        hidden = tuple(hidden) if isinstance(hidden, tuple) else (hidden,)
        s = output[0]  # (B, K)
        if self.attention_kind in ("dot", "general"):
            context, weights = self.attention(s, keys, memory, mask)
        o = self.attentional(s, context)  # (B, E)
        return o, hidden, (o if feed is not None else None), weights

    def initial_feed(self, batch: int, reference: Tensor) -> Tensor | None:
        if self.attention_kind in ("dot", "general") and self.config.input_feeding:
            return reference.new_zeros(batch, self.config.embedding_size)
        return None


class Translator(nn.Module):
    def __init__(self, source_size: int, target_size: int, architecture: ModelConfig) -> None:
        super().__init__()
        self.config = architecture
        self.encoder = Encoder(source_size, architecture)
        self.decoder = Decoder(target_size, architecture)
        parts = 2 if architecture.cell_spec().has_cell_state else 1
        self.bridge = nn.ModuleList(
            nn.Linear(architecture.encoder_output_size, architecture.decoder_size) for _ in range(parts)
        )

    def encode(self, source: Tensor, lengths: Tensor):
        """(memory (S, B, M), keys, mask (B, S), the decoder's initial hidden state: each part (L, B, K))."""
        memory, finals = self.encoder(source, lengths)
        directions, layers = (2 if self.config.bidirectional else 1), self.config.num_layers
        initial = []
        for bridge, final in zip(self.bridge, finals):
            final = final.reshape(layers, directions, *final.shape[1:])  # (L, D, B, H)
            final = final.permute(0, 2, 1, 3).reshape(layers, final.shape[2], -1)  # (L, B, D*H)
            initial.append(torch.tanh(bridge(final)))  # (L, B, K)
        keys = self.decoder.attention.precompute(memory) if self.decoder.attention is not None else None
        mask = torch.arange(source.shape[1], device=source.device)[None, :] < lengths.to(source.device)[:, None]
        return memory, keys, mask, tuple(initial)

    def forward(self, source: Tensor, lengths: Tensor, target_in: Tensor, teacher_forcing: float = 1.0) -> Tensor:
        """Next-token logits (T, B, V) of target_in (B, T) (<s> then the target), the reference fed at each
        step with probability teacher_forcing, else the model's own most likely token."""
        memory, keys, mask, hidden = self.encode(source, lengths)
        decoder = self.decoder
        if not self.config.feeds_back and teacher_forcing >= 1:
            x = decoder.dropout(decoder.embedding(target_in.t()))  # (T, B, E)
            output, _ = decoder.rnn(x, hidden if len(hidden) > 1 else hidden[0])  # (T, B, K)
            context = decoder.attention(output, keys, memory, mask)[0] if decoder.attention is not None else None
            return decoder.output(decoder.attentional(output, context))  # (T, B, V)
        feed = decoder.initial_feed(source.shape[0], memory)
        token, logits = target_in[:, 0], []
        for t in range(target_in.shape[1]):
            o, hidden, feed, _ = decoder.step(token, hidden, feed, memory, keys, mask)
            logits.append(decoder.output(o))  # (B, V)
            if t + 1 < target_in.shape[1]:
                forced = teacher_forcing >= 1 or float(torch.rand(())) < teacher_forcing
                token = target_in[:, t + 1] if forced else logits[-1].argmax(dim=-1).detach()
        return torch.stack(logits)  # (T, B, V)


def to_batch(encoded: EncodedPairs, indices: np.ndarray, device: torch.device):
    """(source ids (B, S) padded, source lengths (B,), target_in (B, T): <s> y, target_out (B, T): y </s>)."""
    sources = [encoded.source[i] for i in indices]
    targets = [encoded.target[i] for i in indices]
    lengths = np.array([len(ids) for ids in sources])
    source = np.full((len(sources), lengths.max()), PAD_ID, dtype=np.int64)
    width = max(len(ids) for ids in targets) + 1
    target_in = np.full((len(targets), width), PAD_ID, dtype=np.int64)
    target_out = np.full((len(targets), width), PAD_ID, dtype=np.int64)
    for row, (ids, target) in enumerate(zip(sources, targets)):
        source[row, : len(ids)] = ids
        target_in[row, 0], target_in[row, 1 : len(target) + 1] = START_ID, target
        target_out[row, : len(target)], target_out[row, len(target)] = target, END_ID
    as_tensor = lambda array: torch.from_numpy(array).to(device)  # noqa: E731
    return as_tensor(source), torch.from_numpy(lengths), as_tensor(target_in), as_tensor(target_out)


def token_losses(logits: Tensor, target_out: Tensor, label_smoothing: float = 0.0) -> tuple[Tensor, int]:
    """(the summed cross-entropy of the real target tokens, their count); logits (T, B, V), target_out (B, T)."""
    targets = target_out.t().reshape(-1)  # (T*B,)
    total = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        targets,
        ignore_index=PAD_ID,
        reduction="sum",
        label_smoothing=label_smoothing,
    )
    return total, int((targets != PAD_ID).sum())


class SearchDecoder:
    """The model as rnnkit.decode searches it: a batch of sources encoded once, each repeated for the
    `width` hypotheses of its sentence (rows b*W + k)."""

    def __init__(self, model: Translator, source: Tensor, lengths: Tensor, width: int) -> None:
        self.model, self.width = model, width
        with torch.no_grad():
            memory, keys, mask, hidden = model.encode(source, lengths)
        repeat = lambda tensor, dim: tensor.repeat_interleave(width, dim=dim)  # noqa: E731
        self.memory, self.mask = repeat(memory, 1), repeat(mask, 0)
        self.keys = repeat(keys, 1) if keys is not None else None
        self.initial = (tuple(repeat(part, 1) for part in hidden), model.decoder.initial_feed(len(self.mask), memory))

    @classmethod
    def of(cls, model: Translator, device: torch.device, sources: list[np.ndarray], width: int) -> "SearchDecoder":
        """The decoder of sources given as arrays of token ids."""
        pairs = EncodedPairs([], sources, [np.zeros(0, dtype=np.int64)] * len(sources))
        source, lengths, _, _ = to_batch(pairs, np.arange(len(sources)), device)
        return cls(model, source, lengths, width)

    def start(self):
        return self.initial

    @torch.no_grad()
    def step(self, tokens: np.ndarray, state):
        hidden, feed = state
        token = torch.from_numpy(np.asarray(tokens, dtype=np.int64)).to(self.memory.device)
        decoder = self.model.decoder
        o, hidden, feed, weights = decoder.step(token, hidden, feed, self.memory, self.keys, self.mask)
        log_probabilities = torch.log_softmax(decoder.output(o).double(), dim=-1).cpu().numpy()
        weights = weights.double().cpu().numpy() if weights is not None else None
        return log_probabilities, weights, (hidden, feed)

    def select(self, state, rows: np.ndarray):
        hidden, feed = state
        index = torch.from_numpy(np.asarray(rows, dtype=np.int64)).to(self.memory.device)
        return tuple(part.index_select(1, index) for part in hidden), feed.index_select(
            0, index
        ) if feed is not None else None


def source_batches(lengths: np.ndarray, batch_size: int):
    """Index arrays of sentences of similar length, every sentence once."""
    order = np.argsort(lengths, kind="stable")
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


@torch.no_grad()
def greedy_translations(model: Translator, encoded: EncodedPairs, device: torch.device, max_length: int):
    """The greedy translation (target ids, the end token dropped) of every pair's source, in order."""
    was_training = model.training
    model.eval()
    decoder_for = lambda sources, width: SearchDecoder.of(model, device, sources, width)  # noqa: E731
    limits = max_target_lengths(encoded.lengths, MAX_LENGTH_RATIO, max_length)
    found = search_all(decoder_for, encoded.source, 1, limits, START_ID, END_ID, batch_size=DECODE_BATCH)
    model.train(was_training)
    return [[i for i in hypothesis.ids if i != END_ID] for hypothesis in found]


@torch.no_grad()
def pair_losses(model: Translator, encoded: EncodedPairs, device: torch.device, batch_size: int):
    """Each pair's summed cross-entropy of its target tokens (the end token included), each given the
    reference before it (N,), and their counts (N,), in batches of similar length."""
    was_training = model.training
    model.eval()
    totals, counts = np.zeros(len(encoded.source)), np.zeros(len(encoded.source), dtype=np.int64)
    for indices in source_batches(encoded.lengths, batch_size):
        source, lengths, target_in, target_out = to_batch(encoded, indices, device)
        logits = model(source, lengths, target_in)  # (T, B, V)
        losses = F.cross_entropy(logits.flatten(0, 1), target_out.t().flatten(), ignore_index=PAD_ID, reduction="none")
        totals[indices] = losses.reshape(logits.shape[:2]).sum(dim=0).double().cpu().numpy()
        counts[indices] = (target_out != PAD_ID).sum(dim=1).cpu().numpy()
    model.train(was_training)
    return totals, counts


class TranslationTraining(ExampleBatches):
    """What the trainer drives (rnnkit.train.trainer.Training), for translation."""

    best_metric, higher_is_better, count_unit = BEST_METRIC, HIGHER_IS_BETTER, "tokens"

    def __init__(self, config: TranslationConfig, data: TranslationData, device: torch.device) -> None:
        self.config, self.data, self.device = config, data, device
        self.model = Translator(len(data.source), len(data.target), config.model).to(device)
        self.batches = LengthBatches(data.train.lengths, config.train.batch_size, config.train.seed)

    def units(self, indices: np.ndarray) -> int:
        return int(self.data.train.target_lengths[indices].sum()) + len(indices)  # each target's end token too

    def start_record(self) -> dict:
        return self.data.long_examples

    def next_batch(self):
        indices, factor = self.next_share()
        return (*to_batch(self.data.train, indices, self.device), factor)

    def loss(self, batch, carry: dict[str, Tensor]) -> tuple[Tensor, int, dict[str, Tensor]]:
        source, lengths, target_in, target_out, factor = batch
        logits = self.model(source, lengths, target_in, self.config.train.teacher_forcing)
        total, count = token_losses(logits, target_out, self.config.model.label_smoothing)
        loss = total / count
        return (loss if factor == 1.0 else loss * factor), count if factor else 0, {}

    def validate(self) -> dict:
        """Per-token perplexity of the references (teacher forced: the true perplexity) and the BLEU of
        greedy translations."""
        encoded = self.data.validation
        totals, counts = pair_losses(self.model, encoded, self.device, self.config.train.eval_batch_size)
        nll = totals.sum() / counts.sum()
        translations = greedy_translations(self.model, encoded, self.device, self.config.data.max_length)
        hypotheses = [detokenize(self.data.target, ids) for ids in translations]
        scores = translation_scores(hypotheses, [pair.target for pair in encoded.pairs])
        return {"loss": nll, "perplexity": math.exp(min(nll, 700.0)), **scores}


def load_checkpoint_model(run, checkpoint, source_size: int, target_size: int):
    return load_model(run, checkpoint, lambda: Translator(source_size, target_size, run.config.model))


def model_function(run, checkpoint, source_size: int, target_size: int):
    """(sources: arrays of token ids, beam width) -> a decoder for rnnkit.decode (rnnkit.tasks.engines)."""
    model, device = load_checkpoint_model(run, checkpoint, source_size, target_size)

    return lambda sources, width: SearchDecoder.of(model, device, sources, width)
