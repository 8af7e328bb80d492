"""The encoder–decoder with attention in the NumPy engine, for `rnnkit translate --engine numpy`: the
same weights (torch.nn names) in rnnkit.reference's layers, in float64, never importing torch. Every
weight's shape is checked against the config and vocabularies, and every value for finiteness, before
anything runs. It computes what torch.py's model computes in evaluation (its module text has the
equations), one step at a time, for rnnkit.decode's searches.

Dimension letters: S source length, B batch (rows: sentences times beam width), E embedding size, H the
encoder's hidden size, D its directions, M = D*H, K the decoder's hidden size, A attention size, L layers,
V the target vocabulary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnkit.tasks.numpy_layers import layer_shapes, load_layer, log_softmax, read_weights, recurrent_layer
from rnnkit.tasks.translation.config import ModelConfig


class NumpyTranslator:
    def __init__(self, architecture: ModelConfig, source_size: int, target_size: int) -> None:
        self.config = architecture
        E, M, K = architecture.embedding_size, architecture.encoder_output_size, architecture.decoder_size
        self.encoder = recurrent_layer(
            architecture, E, architecture.hidden_size, architecture.num_layers, architecture.bidirectional
        )
        feed = {"bahdanau": M, "none": 0}.get(architecture.attention, E if architecture.input_feeding else 0)
        self.decoder = recurrent_layer(architecture, E + feed, K, architecture.num_layers)
        self.parts = 2 if architecture.cell_spec().has_cell_state else 1
        attention = {
            "bahdanau": {
                "keys.weight": (architecture.attention_size or K, M),
                "query.weight": (architecture.attention_size or K, K),
                "query.bias": (architecture.attention_size or K,),
                "v.weight": (1, architecture.attention_size or K),
            },
            "general": {"keys.weight": (K, M)},
        }.get(architecture.attention, {})
        self.shapes = {
            "encoder.embedding.weight": (source_size, E),
            **layer_shapes("encoder.rnn.", self.encoder),
            "decoder.embedding.weight": (target_size, E),
            **layer_shapes("decoder.rnn.", self.decoder),
            **{f"decoder.attention.{name}": shape for name, shape in attention.items()},
            "decoder.combine.weight": (E, K + (M if architecture.attention != "none" else 0)),
            "decoder.combine.bias": (E,),
            "decoder.output.weight": (target_size, E),
            "decoder.output.bias": (target_size,),
            **{name: shape for part in range(self.parts) for name, shape in bridge_shapes(part, M, K).items()},
        }

    def load(self, weights: dict[str, np.ndarray]) -> None:
        load_layer(self.encoder, weights, "encoder.rnn.")
        load_layer(self.decoder, weights, "decoder.rnn.")
        self.weights = weights

    def encode(self, sources: list[np.ndarray]):
        """(memory (S, B, M), keys, mask (B, S), the decoder's initial hidden state: each part (L, B, K))."""
        w, config = self.weights, self.config
        lengths = np.array([len(ids) for ids in sources])
        x = np.zeros((lengths.max(), len(sources), config.embedding_size))  # (S, B, E)
        for column, ids in enumerate(sources):
            x[: len(ids), column] = w["encoder.embedding.weight"][ids]
        memory, finals = self.encoder.forward(x, None, lengths)  # (S, B, M)
        finals = finals if isinstance(finals, tuple) else (finals,)
        directions, layers = (2 if config.bidirectional else 1), config.num_layers
        initial = []
        for part, final in enumerate(finals):
            final = final.reshape(layers, directions, *final.shape[1:]).transpose(0, 2, 1, 3)  # (L, B, D, H)
            final = final.reshape(layers, final.shape[1], -1)  # (L, B, D*H)
            initial.append(np.tanh(final @ w[f"bridge.{part}.weight"].T + w[f"bridge.{part}.bias"]))  # (L, B, K)
        kind = config.attention
        keys = memory @ w["decoder.attention.keys.weight"].T if kind in ("bahdanau", "general") else memory
        mask = np.arange(len(x))[None, :] < lengths[:, None]  # (B, S)
        return memory, keys, mask, tuple(initial)

    def attend(self, query: np.ndarray, keys: np.ndarray, memory: np.ndarray, mask: np.ndarray):
        """(context (B, M), weights (B, S)) of a query (B, K)."""
        w = self.weights
        if self.config.attention == "bahdanau":
            projected = query @ w["decoder.attention.query.weight"].T + w["decoder.attention.query.bias"]  # (B, A)
            scores = (np.tanh(keys + projected[None]) @ w["decoder.attention.v.weight"].T)[..., 0].T  # (B, S)
        else:
            scores = np.einsum("bk,sbk->bs", query, keys)  # (B, S)
        scores = np.where(mask, scores, -np.inf)
        weights = np.exp(scores - scores.max(axis=1, keepdims=True))
        weights = weights / weights.sum(axis=1, keepdims=True)  # (B, S): 0 on padding
        return np.einsum("bs,sbm->bm", weights, memory), weights

    def step(self, token: np.ndarray, hidden: tuple, feed: np.ndarray | None, memory, keys, mask):
        """One step from y_{t-1} (B,): (o_t (B, E), the new hidden state, the new feed, weights (B, S) or None)."""
        w, kind = self.weights, self.config.attention
        x = w["decoder.embedding.weight"][token]  # (B, E)
        context = weights = None
        if kind == "bahdanau":
            context, weights = self.attend(hidden[0][-1], keys, memory, mask)  # from s_{t-1}
            x = np.concatenate([x, context], axis=1)
        elif feed is not None:
            x = np.concatenate([x, feed], axis=1)
        output, hidden = self.decoder.forward(x[None], hidden if self.parts > 1 else hidden[0])  # (1, B, K)
        hidden = tuple(hidden) if isinstance(hidden, tuple) else (hidden,)
        s = output[0]  # (B, K)
        if kind in ("dot", "general"):
            context, weights = self.attend(s, keys, memory, mask)
        joined = s if context is None else np.concatenate([s, context], axis=1)
        o = np.tanh(joined @ w["decoder.combine.weight"].T + w["decoder.combine.bias"])  # (B, E)
        return o, hidden, (o if feed is not None else None), weights

    def initial_feed(self, batch: int) -> np.ndarray | None:
        if self.config.attention in ("dot", "general") and self.config.input_feeding:
            return np.zeros((batch, self.config.embedding_size))
        return None


def bridge_shapes(part: int, memory_size: int, decoder_size: int) -> dict:
    return {f"bridge.{part}.weight": (decoder_size, memory_size), f"bridge.{part}.bias": (decoder_size,)}


class NumpySearchDecoder:
    """As torch.py's SearchDecoder: a batch of sources encoded once, each repeated for the `width`
    hypotheses of its sentence (rows b*W + k)."""

    def __init__(self, model: NumpyTranslator, sources: list[np.ndarray], width: int) -> None:
        self.model = model
        memory, keys, mask, hidden = model.encode(sources)
        self.memory, self.keys = memory.repeat(width, axis=1), keys.repeat(width, axis=1)
        self.mask = mask.repeat(width, axis=0)
        self.initial = (tuple(part.repeat(width, axis=1) for part in hidden), model.initial_feed(len(self.mask)))

    def start(self):
        return self.initial

    def step(self, tokens: np.ndarray, state):
        hidden, feed = state
        model = self.model
        o, hidden, feed, weights = model.step(np.asarray(tokens), hidden, feed, self.memory, self.keys, self.mask)
        scores = o @ model.weights["decoder.output.weight"].T + model.weights["decoder.output.bias"]  # (B, V)
        return log_softmax(scores), weights, (hidden, feed)

    def select(self, state, rows: np.ndarray):
        hidden, feed = state
        return tuple(part[:, rows] for part in hidden), feed[rows] if feed is not None else None


def model_function(run, checkpoint: Path, source_size: int, target_size: int):
    """(sources: lists of token ids, beam width) -> a decoder for rnnkit.decode (rnnkit.tasks.engines)."""
    model = NumpyTranslator(run.config.model, source_size, target_size)
    model.load(read_weights(checkpoint, model.shapes))
    return lambda sources, width: NumpySearchDecoder(model, sources, width)
