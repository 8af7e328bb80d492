"""The tagger in PyTorch: the network, its training batches, loss, decoding and evaluation.

Dimension letters: T time (words), B batch (sentences), N words of the batch, C characters of a
word, E word embedding size, F character-encoding size (2 × char_hidden_size), H hidden size,
D directions, K tags.

    words (B, T) -> Embedding (T, B, E) ┐
    each word's characters (N, C) -> BiLSTM -> final states (N, F) -> (T, B, F) ┘-> join (T, B, E+F)
      -> dropout -> stacked (bi)directional layer, packed [+ residual from the second layer on]
      -> dropout -> Linear -> scores e_t (T, B, K) -> argmax, or a CRF (Viterbi)

Every recurrent layer runs on packed sequences, so padding costs nothing and the loss is averaged
over real words only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit import nn as rnn_layers
from rnnkit.data.batching import LengthBatches
from rnnkit.data.vocabulary import Vocabulary
from rnnkit.export import Exported, padded_output, traceable
from rnnkit.nn.interop import to_torch
from rnnkit.tasks.tagger.config import ModelConfig, TaggerConfig
from rnnkit.tasks.tagger.data import EncodedSentences, TaggerData
from rnnkit.tasks.tagger.metrics import BEST_METRIC, HIGHER_IS_BETTER
from rnnkit.tasks.torch_layers import ExampleBatches, build_recurrent_layer, load_model, word_dropout

PADDING_ID, UNKNOWN_ID = 0, 1  # the vocabularies' first two tokens (data.load_run_files checks)


class CharacterEncoder(nn.Module):
    """A BiLSTM over a word's characters; the word's encoding is [forward last state; reverse first]."""

    def __init__(self, characters: int, embedding_size: int, hidden_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(characters, embedding_size, padding_idx=PADDING_ID)
        self.rnn = rnn_layers.LSTM(embedding_size, hidden_size, bidirectional=True)

    def forward(self, characters: Tensor, lengths: Tensor) -> Tensor:
        """(N, F) from character ids (N, C) padded, with each word's length (N,)."""
        packed = pack_padded_sequence(self.embedding(characters.t()), lengths.cpu(), enforce_sorted=False)
        _, (h_n, _) = self.rnn(packed)  # (2, N, Hc)
        return torch.cat([h_n[0], h_n[1]], dim=-1)  # (N, F)


class Tagger(nn.Module):
    def __init__(self, words: int, characters: int, tags: int, architecture: ModelConfig) -> None:
        super().__init__()
        self.config = architecture
        directions = 2 if architecture.bidirectional else 1
        self.word_embedding = nn.Embedding(words, architecture.embedding_size, padding_idx=PADDING_ID)
        self.characters = (
            CharacterEncoder(characters, architecture.char_embedding_size, architecture.char_hidden_size)
            if architecture.char_encoder == "bilstm"
            else None
        )
        input_size = architecture.embedding_size + (
            2 * architecture.char_hidden_size if self.characters is not None else 0
        )
        if architecture.residual:  # one module per layer, so the skip connections can go between them
            self.layers = nn.ModuleList(
                build_recurrent_layer(
                    architecture,
                    input_size if k == 0 else directions * architecture.hidden_size,
                    architecture.bidirectional,
                    num_layers=1,
                )
                for k in range(architecture.num_layers)
            )
        else:
            self.rnn = build_recurrent_layer(architecture, input_size, architecture.bidirectional)
        self.dropout = nn.Dropout(architecture.dropout)
        self.output = nn.Linear(directions * architecture.hidden_size, tags)
        self.crf = rnn_layers.CRF(tags) if architecture.crf else None

    def word_inputs(self, words: Tensor, characters: Tensor, character_lengths: Tensor) -> Tensor:
        """The word representations (T, B, E+F) of a batch: embedding joined with the spelling's encoding."""
        if self.training:
            words = word_dropout(words, self.config.word_dropout, UNKNOWN_ID, PADDING_ID)
        embedded = self.word_embedding(words.t())  # (T, B, E)
        if self.characters is None:
            return embedded
        spelled = embedded.new_zeros(words.shape[0], words.shape[1], 2 * self.config.char_hidden_size)  # (B, T, F)
        spelled[words != PADDING_ID] = self.characters(characters, character_lengths)  # words in (b, t) order
        return torch.cat([embedded, spelled.transpose(0, 1)], dim=-1)  # (T, B, E+F)

    def emissions(self, words: Tensor, characters: Tensor, character_lengths: Tensor, lengths: Tensor) -> Tensor:
        """The tag scores e_t (T, B, K) of a batch of sentences (words (B, T) padded, lengths (B,))."""
        x = self.dropout(self.word_inputs(words, characters, character_lengths))  # (T, B, E+F)
        lengths = lengths.cpu()
        if self.config.residual:
            for k, layer in enumerate(self.layers):
                y, _ = pad_packed_sequence(
                    layer(pack_padded_sequence(x, lengths, enforce_sorted=False))[0], total_length=x.shape[0]
                )  # (T, B, D*H)
                x = self.dropout(y + x if k > 0 else y)
        else:
            y, _ = pad_packed_sequence(
                self.rnn(pack_padded_sequence(x, lengths, enforce_sorted=False))[0], total_length=x.shape[0]
            )  # (T, B, D*H)
            x = self.dropout(y)
        return self.output(x)  # (T, B, K)

    def loss(self, emissions: Tensor, tags: Tensor, lengths: Tensor) -> Tensor:
        """Mean over real words: cross-entropy, or the CRF's −log p(y | x) per word. tags (T, B), -1 at padding."""
        mask = tags >= 0
        if self.crf is None:
            return F.cross_entropy(emissions[mask], tags[mask])
        return self.crf.neg_log_likelihood(emissions, tags.clamp(min=0), lengths).sum() / mask.sum()

    def decode(self, emissions: Tensor, lengths: Tensor) -> Tensor:
        """The predicted tags (T, B): argmax, or the CRF's Viterbi path."""
        return emissions.argmax(dim=-1) if self.crf is None else self.crf.decode(emissions, lengths)


def to_batch(encoded: EncodedSentences, indices: np.ndarray, device: torch.device):
    """(words (B, T), characters (N, C), character lengths (N,), lengths (B,), tags (T, B) with -1 at
    padding) of some sentences."""
    lengths = encoded.lengths[indices]
    words = np.zeros((len(indices), lengths.max()), dtype=np.int64)
    tags = np.full((lengths.max(), len(indices)), -1, dtype=np.int64)
    spellings = []
    for row, index in enumerate(indices):
        words[row, : lengths[row]] = encoded.words[index]
        tags[: lengths[row], row] = encoded.tags[index]
        spellings.extend(encoded.characters[index])
    character_lengths = np.array([max(len(spelling), 1) for spelling in spellings])
    characters = np.zeros((len(spellings), character_lengths.max()), dtype=np.int64)
    for row, spelling in enumerate(spellings):
        characters[row, : len(spelling)] = spelling
    return (
        torch.from_numpy(words).to(device),
        torch.from_numpy(characters).to(device),
        torch.from_numpy(character_lengths),
        torch.from_numpy(lengths),
        torch.from_numpy(tags).to(device),
    )


@torch.no_grad()
def tag_sentences(model: Tagger, encoded: EncodedSentences, device: torch.device, batch_size: int):
    """(predicted tag ids per sentence, the summed loss over known tags, the number of such tags)."""
    was_training = model.training
    model.eval()
    order = np.argsort(encoded.lengths, kind="stable")
    predicted: list[np.ndarray | None] = [None] * len(order)
    total, count = 0.0, 0
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        words, characters, character_lengths, lengths, tags = to_batch(encoded, indices, device)
        emissions = model.emissions(words, characters, character_lengths, lengths)
        known = tags >= 0
        if known.any() and model.crf is None:
            total += float(F.cross_entropy(emissions[known], tags[known], reduction="sum"))
            count += int(known.sum())
        paths = model.decode(emissions, lengths).cpu().numpy()  # (T, B)
        for column, index in enumerate(indices):
            predicted[index] = paths[: lengths[column], column]
    model.train(was_training)
    return predicted, total, count


class TaggerTraining(ExampleBatches):
    """What the trainer drives (rnnkit.train.trainer.Training), for tagging."""

    best_metric, higher_is_better, count_unit = BEST_METRIC, HIGHER_IS_BETTER, "tokens"

    def __init__(self, config: TaggerConfig, data: TaggerData, device: torch.device) -> None:
        self.config, self.data, self.device = config, data, device
        self.model = Tagger(len(data.vocabulary), len(data.characters), len(data.tags), config.model).to(device)
        self.batches = LengthBatches(data.train.lengths, config.train.batch_size, config.train.seed)

    def start_record(self) -> dict:
        return self.data.long_examples

    def units(self, indices: np.ndarray) -> int:
        return int(self.data.train.lengths[indices].sum())  # the loss is a mean over words

    def next_batch(self):
        indices, factor = self.next_share()
        return (*to_batch(self.data.train, indices, self.device), factor)

    def loss(self, batch, carry: dict[str, Tensor]) -> tuple[Tensor, int, dict[str, Tensor]]:
        words, characters, character_lengths, lengths, tags, factor = batch
        emissions = self.model.emissions(words, characters, character_lengths, lengths)
        loss = self.model.loss(emissions, tags, lengths)
        return (loss if factor == 1.0 else loss * factor), int(lengths.sum()) if factor else 0, {}

    def validate(self) -> dict:
        encoded = self.data.validation
        predicted, total, count = tag_sentences(self.model, encoded, self.device, self.config.train.eval_batch_size)
        gold, guessed = np.concatenate(encoded.tags), np.concatenate(predicted)
        accuracy = float((gold == guessed).mean())
        return {"loss": total / count if count else 1.0 - accuracy, "accuracy": accuracy, "tokens": int(len(gold))}


def tagged_with_probabilities(
    model: Tagger, encoded: EncodedSentences, device: torch.device
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per sentence, its predicted tag ids and each word's probability of each tag, (T, K) (EQUATIONS.md,
    "Tagging"): the softmax of its scores, or with a CRF the marginal p(y_t = k | x), which is
    ∂ log Z / ∂ e_t[k]. One sentence at a time, each sentence's scores computed once."""
    tagged = []
    for index in range(len(encoded.words)):
        words, characters, character_lengths, lengths, _ = to_batch(encoded, np.array([index]), device)
        with torch.no_grad():
            emissions = model.emissions(words, characters, character_lengths, lengths)  # (T, 1, K)
            tags = model.decode(emissions, lengths)[:, 0].cpu().numpy()  # (T,)
        if model.crf is None:
            tagged.append((tags, torch.softmax(emissions[:, 0].double(), dim=-1).cpu().numpy()))
            continue
        emissions.requires_grad_(True)
        with torch.enable_grad():
            (marginals,) = torch.autograd.grad(model.crf.log_partition(emissions, lengths).sum(), emissions)
        tagged.append((tags, marginals[:, 0].double().cpu().numpy()))
    return tagged


def model_function(run, checkpoint: Path, prepared: TaggerData, probabilities: bool = False):
    """EncodedSentences -> predicted tag ids per sentence, with the checkpoint's model (rnnkit.tasks.engines);
    with `probabilities`, (tag ids, each word's tag probabilities (T, K)) per sentence."""
    model, device = load_model(
        run,
        checkpoint,
        lambda: Tagger(len(prepared.vocabulary), len(prepared.characters), len(prepared.tags), run.config.model),
    )
    if probabilities:
        return lambda encoded: tagged_with_probabilities(model, encoded, device)
    return lambda encoded: tag_sentences(model, encoded, device, run.config.train.eval_batch_size)[0]


class ExportedTagger(nn.Module):
    """The tagger as ONNX gets it: word ids (B, T), each word's character ids (B, T, C) and lengths
    (B, T), and the sentences' lengths (B,) in; the tag scores (B, T, K) out (the emissions, before the
    CRF if there is one), and the CRF's transitions (K, K), start and end scores (K,) for Viterbi beside
    them. torch.nn's recurrent layers stand in for rnnkit's; the lengths reach ONNX's RNN operators as
    sequence lengths, in any order (tracing needs examples sorted by length)."""

    def __init__(self, model: Tagger, twin: bool = True) -> None:
        super().__init__()
        self.model = (to_torch(model) if twin else model).eval()

    def forward(self, words: Tensor, characters: Tensor, character_lengths: Tensor, lengths: Tensor):
        model = self.model
        batch, length = words.shape
        x = model.word_embedding(words.t())  # (T, B, E)
        if model.characters is not None:
            flat = characters.reshape(batch * length, -1)  # every position's spelling, padding included
            embedded = model.characters.embedding(flat.t())  # (C, B*T, Ec)
            spelling_lengths = character_lengths.reshape(-1).clamp(min=1)
            padded = padded_output(model.characters.rnn, embedded, spelling_lengths, sorted_when_exported=False)
            # (C, B*T, 2Hc); the final states are read from it, as the exporter needs the outputs used:
            hidden = padded.shape[-1] // 2  # the forward direction ends at the last letter, the reverse at 0
            forward = padded[spelling_lengths - 1, torch.arange(padded.shape[1])][:, :hidden]
            spelled = torch.cat([forward, padded[0, :, hidden:]], dim=-1).reshape(batch, length, -1)  # (B, T, F)
            x = torch.cat([x, spelled.transpose(0, 1)], dim=-1)
        if model.config.residual:
            for k, layer in enumerate(model.layers):
                y = padded_output(layer, x, lengths)
                x = y + x if k > 0 else y
        else:
            x = padded_output(model.rnn, x, lengths)
        scores = model.output(x).transpose(0, 1)  # (B, T, K)
        if model.crf is None:
            return (scores,)
        return scores, model.crf.transitions, model.crf.start, model.crf.end


def exported_model(run, checkpoint: Path, words: Vocabulary, characters: Vocabulary, tags: list[str]) -> Exported:
    model, _ = load_model(run, checkpoint, lambda: Tagger(len(words), len(characters), len(tags), run.config.model))
    model = model.cpu()
    module, reference, rewrite = traceable(model, ExportedTagger, lambda as_is: ExportedTagger(as_is, twin=False))

    def inputs(batch: int, length: int, descending: bool = False) -> tuple:
        generator = torch.Generator().manual_seed(1000 * batch + length)
        lengths = torch.randint(1, length + 1, (batch,), generator=generator)
        lengths[batch // 2] = length
        if descending:
            lengths = lengths.sort(descending=True).values
        padding = torch.arange(length)[None, :] >= lengths[:, None]  # (B, T)
        word_ids = torch.randint(2, max(3, len(words)), (batch, length), generator=generator).masked_fill(padding, 0)
        character_lengths = torch.randint(1, 8, (batch, length), generator=generator).masked_fill(padding, 0)
        character_ids = torch.randint(2, max(3, len(characters)), (batch, length, 7), generator=generator)
        character_ids[torch.arange(7)[None, None, :] >= character_lengths[..., None]] = 0
        return word_ids, character_ids, character_lengths, lengths

    crf = model.crf is not None
    outputs = ["scores", *(["transitions", "start", "end"] if crf else [])]
    return Exported(
        module,
        ["words", "characters", "character_lengths", "lengths"],
        outputs,
        {
            "words": {0: "batch", 1: "length"},
            "characters": {0: "batch", 1: "length", 2: "spelling"},
            "character_lengths": {0: "batch", 1: "length"},
            "lengths": {0: "batch"},
            "scores": {0: "batch", 1: "length"},
        },
        inputs,
        f"tag scores (batch, length, {len(tags)} tags) of word ids (batch, length), their character ids "
        "(batch, length, spelling) and lengths (batch, length), and the sentences' lengths (batch)"
        + ("; the CRF's transitions (from, to), start and end scores beside them, for Viterbi" if crf else ""),
        traced_inputs=lambda batch, length: inputs(batch, length, descending=True),
        reference=reference,
        rewrite=rewrite,
    )
