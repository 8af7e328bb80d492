"""The regularisers of AWD-LSTM (Merity et al. 2017), each small (EQUATIONS.md, "Word-level
regularisers"):

- `LockedDropout`: variational dropout, one Bernoulli mask per sequence and feature, shared by every
  time step, scaled by 1/(1-p); only in training.
- `embedding_dropout`: drop whole rows (word types) of an embedding matrix, scale the rest by 1/(1-p).
- `WeightDrop` (DropConnect on the recurrent weights): W_hh <- mask ⊙ W_hh / (1-p), one mask per
  forward call shared by every time step. It overrides the layer's `effective_weights`, so the raw
  parameter stays the parameter (the optimiser updates it, gradients reach it through the mask), no
  torch internals are touched and a standard cell keeps its fused kernel.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from rnnkit.nn.layers import GRU, LSTM, RNN


class LockedDropout(nn.Module):
    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        """x (T, B, F): the same mask at every step t."""
        if not self.training or self.p == 0:
            return x
        mask = x.new_empty(1, *x.shape[1:]).bernoulli_(1 - self.p) / (1 - self.p)  # (1, B, F)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


def embedding_dropout(embedding: nn.Embedding, ids: Tensor, p: float, training: bool) -> Tensor:
    """The embedding of ids with whole rows of the matrix (word types) dropped with probability p."""
    if not training or p == 0:
        return embedding(ids)
    mask = embedding.weight.new_empty(embedding.weight.shape[0], 1).bernoulli_(1 - p) / (1 - p)  # (V, 1)
    return F.embedding(ids, embedding.weight * mask, embedding.padding_idx)


class WeightDrop:
    """Mixin for rnnkit.nn layers: DropConnect with probability `weight_drop` on every weight_hh."""

    def __init__(self, *args, weight_drop: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not 0 <= weight_drop < 1:
            raise ValueError(f"weight_drop: expected a probability in [0, 1), got {weight_drop!r}")
        self.weight_drop = weight_drop

    def effective_weights(self) -> list[Tensor]:
        weights = super().effective_weights()
        if not self.training or self.weight_drop == 0:
            return weights
        return [
            F.dropout(weight, self.weight_drop, training=True) if name.startswith("weight_hh") else weight
            for name, weight in zip(self._flat_weights_names, weights)
        ]

    def extra_repr(self) -> str:
        return super().extra_repr() + f", weight_drop={self.weight_drop}"


class WeightDropRNN(WeightDrop, RNN):
    pass


class WeightDropLSTM(WeightDrop, LSTM):
    pass


class WeightDropGRU(WeightDrop, GRU):
    pass
