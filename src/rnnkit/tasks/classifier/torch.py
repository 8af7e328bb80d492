"""The sentence classifier in PyTorch: the network, its training batches, loss and evaluation.

Dimension letters: T time (words), B batch (sentences), E embedding size, H hidden size, D
directions, L layers, K labels.

    ids (B, T) -> Embedding -> (T, B, E) -> packed -> recurrent layer -> sentence vector s (B, D*H)
               -> dropout -> Linear -> logits (B, K)

The batch is packed (torch.nn.utils.rnn.pack_padded_sequence), so the recurrent layer does no work on
padding and its final states are each sentence's own. The sentence vector (EQUATIONS.md, "Classification"):
`last` is [forward state after the last word; reverse state after the first word] of the top layer,
`max` and `mean` pool the top layer's outputs over each sentence's own words.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.data.batching import LengthBatches
from rnnkit.data.vocabulary import Vocabulary
from rnnkit.export import Exported, padded_output, traceable
from rnnkit.nn.interop import to_torch
from rnnkit.tasks.classifier.config import ClassifierConfig, ModelConfig
from rnnkit.tasks.classifier.data import ClassifierData, Encoded
from rnnkit.tasks.classifier.metrics import BEST_METRIC, HIGHER_IS_BETTER, classification_metrics
from rnnkit.tasks.torch_layers import ExampleBatches, build_recurrent_layer, load_model, word_dropout

PADDING_ID, UNKNOWN_ID = 0, 1  # the vocabulary's first two tokens (data.load_vocabulary checks)


class SentenceClassifier(nn.Module):
    def __init__(self, vocabulary_size: int, label_count: int, architecture: ModelConfig) -> None:
        super().__init__()
        self.config = architecture
        directions = 2 if architecture.bidirectional else 1
        self.embedding = nn.Embedding(vocabulary_size, architecture.embedding_size, padding_idx=PADDING_ID)
        if architecture.embedding_init_scale > 0:
            with torch.no_grad():
                nn.init.uniform_(
                    self.embedding.weight, -architecture.embedding_init_scale, architecture.embedding_init_scale
                )
                self.embedding.weight[PADDING_ID].zero_()
        self.embedding_dropout = nn.Dropout(architecture.embedding_dropout)
        self.rnn = build_recurrent_layer(architecture, architecture.embedding_size, architecture.bidirectional)
        self.dropout = nn.Dropout(architecture.dropout)
        self.output = nn.Linear(directions * architecture.hidden_size, label_count)
        if architecture.freeze_embeddings:
            self.embedding.weight.requires_grad_(False)

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        """Logits (B, K) of padded token ids (B, T) with the sentences' lengths (B,)."""
        return self.classify(self.embed(ids), lengths)

    def embed(self, ids: Tensor) -> Tensor:
        """The word vectors (T, B, E) of padded token ids (B, T), after word dropout in training."""
        if self.training:
            ids = word_dropout(ids, self.config.word_dropout, UNKNOWN_ID, PADDING_ID)
        return self.embedding(ids.t())

    def classify(self, embedded: Tensor, lengths: Tensor) -> Tensor:
        """Logits (B, K) of word vectors (T, B, E) with the sentences' lengths (B,)."""
        packed = pack_padded_sequence(self.embedding_dropout(embedded), lengths.cpu(), enforce_sorted=False)
        output, state = self.rnn(packed)
        vector = self.sentence_vector(output, state[0] if isinstance(state, tuple) else state)  # (B, D*H)
        return self.output(self.dropout(vector))  # (B, K)

    def sentence_vector(self, output, h_n: Tensor) -> Tensor:
        directions = 2 if self.config.bidirectional else 1
        if self.config.pooling == "last":
            return torch.cat(list(h_n[-directions:]), dim=-1)  # the top layer's final states: (B, D*H)
        padded, lengths = pad_packed_sequence(output)  # (T, B, D*H), in the batch's own order
        mask = (torch.arange(padded.shape[0])[:, None] < lengths[None, :]).to(padded.device)[..., None]  # (T, B, 1)
        if self.config.pooling == "max":
            return padded.masked_fill(~mask, -math.inf).max(dim=0).values  # (B, D*H)
        return padded.sum(dim=0) / lengths.to(padded.device, padded.dtype)[:, None]  # padding is zero: (B, D*H)


def to_batch(encoded: Encoded, indices: np.ndarray, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """(ids (B, T) padded with <pad>, lengths (B,), label ids (B,)) of some examples."""
    sequences = [encoded.ids[i] for i in indices]
    lengths = np.array([len(sequence) for sequence in sequences])
    ids = np.full((len(sequences), lengths.max()), PADDING_ID, dtype=np.int64)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = sequence
    return (
        torch.from_numpy(ids).to(device),
        torch.from_numpy(lengths),
        torch.from_numpy(encoded.labels[indices]).to(device),
    )


def training_loss(model: SentenceClassifier, ids: Tensor, lengths: Tensor, labels: Tensor, epsilon: float) -> Tensor:
    """Cross-entropy; with ε > 0 (model.adversarial), plus the cross-entropy of the same batch with each
    sentence's word vectors e moved to e + ε g/‖g‖, g the gradient of the first loss with respect to e
    and ‖g‖ its L2 norm over the sentence (adversarial training, Miyato et al. 2017). The move is a
    constant: the gradient reaches the embeddings through e in both terms."""
    embedded = model.embed(ids)  # (T, B, E)
    loss = F.cross_entropy(model.classify(embedded, lengths), labels)
    if not epsilon:
        return loss
    (gradient,) = torch.autograd.grad(loss, embedded, retain_graph=True)
    norms = gradient.square().sum(dim=(0, 2)).sqrt().clamp_min(1e-12)  # (B,)
    return loss + F.cross_entropy(model.classify(embedded + epsilon * gradient / norms[:, None], lengths), labels)


@torch.no_grad()
def logits_of(model: SentenceClassifier, encoded: Encoded, device: torch.device, batch_size: int) -> Tensor:
    """The logits (N, K) of every example, in evaluation mode, batched by similar length."""
    was_training = model.training
    model.eval()
    order = np.argsort(encoded.lengths, kind="stable")
    logits = torch.empty(len(order), model.output.out_features, dtype=torch.float32)
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        ids, lengths, _ = to_batch(encoded, indices, device)
        logits[torch.from_numpy(indices)] = model(ids, lengths).float().cpu()
    model.train(was_training)
    return logits


def apply_pretrained_vectors(model: SentenceClassifier, data: ClassifierData) -> None:
    with torch.no_grad():
        for index, vector in data.vectors.items():
            model.embedding.weight[index] = torch.from_numpy(vector)


class ClassifierTraining(ExampleBatches):
    """What the trainer drives (rnnkit.train.trainer.Training), for classification."""

    best_metric, higher_is_better, count_unit = BEST_METRIC, HIGHER_IS_BETTER, "sentences"

    def __init__(self, config: ClassifierConfig, data: ClassifierData, device: torch.device) -> None:
        self.config, self.data, self.device = config, data, device
        self.model = SentenceClassifier(len(data.vocabulary), len(data.labels), config.model).to(device)
        if data.vectors:
            apply_pretrained_vectors(self.model, data)
        self.batches = LengthBatches(data.train.lengths, config.train.batch_size, config.train.seed)

    def start_record(self) -> dict:
        """What metrics.jsonl's start event adds: the sentences over data.max_length, and how many words
        had pretrained vectors."""
        if self.data.vectors is None:
            return self.data.long_examples
        return self.data.long_examples | {
            "pretrained_vectors": {
                "found": len(self.data.vectors),
                "vocabulary": len(self.data.vocabulary),
                "file_lines": self.data.vector_lines,
            }
        }

    def next_batch(self):
        indices, factor = self.next_share()
        return (*to_batch(self.data.train, indices, self.device), factor)

    def loss(self, batch, carry: dict[str, Tensor]) -> tuple[Tensor, int, dict[str, Tensor]]:
        ids, lengths, labels, factor = batch
        loss = training_loss(self.model, ids, lengths, labels, self.config.model.adversarial)
        return (loss if factor == 1.0 else loss * factor), len(labels) if factor else 0, {}

    def validate(self) -> dict:
        encoded = self.data.validation
        logits = logits_of(self.model, encoded, self.device, self.config.train.eval_batch_size)
        labels = torch.from_numpy(encoded.labels)
        metrics = classification_metrics(encoded.labels, logits.argmax(dim=1).numpy(), self.data.labels)
        return {
            "loss": float(F.cross_entropy(logits, labels)),
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "examples": metrics["examples"],
        }


def load_checkpoint_model(run, checkpoint: Path, vocabulary: Vocabulary, labels: list[str]):
    return load_model(run, checkpoint, lambda: SentenceClassifier(len(vocabulary), len(labels), run.config.model))


def predict_labels(run, checkpoint: Path, vocabulary: Vocabulary, labels: list[str], encoded: Encoded) -> np.ndarray:
    model, device = load_checkpoint_model(run, checkpoint, vocabulary, labels)
    return logits_of(model, encoded, device, run.config.train.eval_batch_size).argmax(dim=1).numpy()


def model_function(run, checkpoint: Path, vocabulary: Vocabulary, labels: list[str]):
    """Token-id arrays -> probabilities (N, K) in float64, with the checkpoint's model (rnnkit.tasks.engines)."""
    model, device = load_checkpoint_model(run, checkpoint, vocabulary, labels)

    def probabilities(ids: list[np.ndarray]) -> np.ndarray:
        encoded = Encoded([], ids, np.zeros(len(ids), dtype=np.int64))
        logits = logits_of(model, encoded, device, run.config.train.eval_batch_size).double()
        return torch.softmax(logits, dim=1).numpy()

    return probabilities


class ExportedClassifier(nn.Module):
    """The classifier as ONNX gets it: padded token ids (B, T) and the sentences' lengths (B,) in, logits
    (B, K) out, with torch.nn's recurrent layer in place of rnnkit's. The lengths reach ONNX's RNN
    operator as its sequence lengths, which it takes in any order, so the graph sorts nothing; tracing
    it needs examples sorted by length."""

    def __init__(self, model: SentenceClassifier, twin: bool = True) -> None:
        super().__init__()
        self.pooling, self.directions = model.config.pooling, 2 if model.config.bidirectional else 1
        self.model = (to_torch(model) if twin else model).eval()

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        model = self.model
        padded = padded_output(model.rnn, model.embedding(ids.t()), lengths)  # (T, B, D*H)
        if self.pooling == "last":  # the top layer's final states, read from its outputs (the exporter needs them used)
            hidden = padded.shape[-1] // self.directions
            last = padded[lengths - 1, torch.arange(padded.shape[1])]  # (B, D*H): the forward direction ends here
            final = (
                last[:, :hidden] if self.directions == 1 else torch.cat([last[:, :hidden], padded[0, :, hidden:]], -1)
            )
            return model.output(final)
        mask = (torch.arange(padded.shape[0])[:, None] < lengths[None, :])[..., None]  # (T, B, 1)
        if self.pooling == "max":
            return model.output(padded.masked_fill(~mask, -math.inf).max(dim=0).values)
        return model.output(padded.sum(dim=0) / lengths[:, None].to(padded.dtype))


def exported_model(run, checkpoint: Path, vocabulary: Vocabulary, labels: list[str]) -> Exported:
    model, device = load_checkpoint_model(run, checkpoint, vocabulary, labels)
    model = model.cpu()
    module, reference, rewrite = traceable(
        model, ExportedClassifier, lambda as_is: ExportedClassifier(as_is, twin=False)
    )

    def inputs(batch: int, length: int, descending: bool = False) -> tuple:
        generator = torch.Generator().manual_seed(1000 * batch + length)
        lengths = torch.randint(1, length + 1, (batch,), generator=generator)
        lengths[batch // 2] = length  # the longest sentence fills the padded length
        if descending:
            lengths = lengths.sort(descending=True).values
        ids = torch.randint(2, max(3, len(vocabulary)), (batch, length), generator=generator)
        ids[torch.arange(length)[None, :] >= lengths[:, None]] = PADDING_ID
        return ids, lengths

    return Exported(
        module,
        ["tokens", "lengths"],
        ["logits"],
        {"tokens": {0: "batch", 1: "length"}, "lengths": {0: "batch"}, "logits": {0: "batch"}},
        inputs,
        f"logits (batch, {len(labels)} labels: {', '.join(labels[:5])}{', ...' if len(labels) > 5 else ''}) of "
        "padded token ids (batch, length) and the sentences' lengths (batch)",
        traced_inputs=lambda batch, length: inputs(batch, length, descending=True),
        reference=reference,
        rewrite=rewrite,
    )
