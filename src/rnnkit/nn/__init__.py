"""The PyTorch engine: drop-in replacements for torch.nn's recurrent layers and cells.

    from rnnkit import nn as rnn
    lstm = rnn.LSTM(10, 20, num_layers=2, peephole=True)     # any torch.nn.LSTM argument, plus variants

A whole module saved with `torch.save(model)` loads with `torch.load(path, weights_only=True)` inside
`torch.serialization.safe_globals(rnn.SAFE_GLOBALS)` (plus the classes of the model's other modules).
"""

from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnkit.nn.crf import CRF
from rnnkit.nn.interop import to_torch
from rnnkit.nn.layers import GRU, LSTM, RNN, RecurrentLayer
from rnnkit.nn.minimal import MinGRU, MinGRUCell, MinLSTM, MinLSTMCell
from rnnkit.nn.regularisers import LockedDropout, WeightDropGRU, WeightDropLSTM, WeightDropRNN, embedding_dropout
from rnnkit.nn.trace import Trace, trace
from rnnkit.spec import CellSpec

# Everything a pickled rnnkit layer or cell refers to, for torch.load(weights_only=True).
SAFE_GLOBALS = [
    RNN,
    LSTM,
    GRU,
    RNNCell,
    LSTMCell,
    GRUCell,
    MinGRU,
    MinLSTM,
    MinGRUCell,
    MinLSTMCell,
    WeightDropRNN,
    WeightDropLSTM,
    WeightDropGRU,
    CRF,
    LockedDropout,
    CellSpec,
]

__all__ = [
    "RNN",
    "LSTM",
    "GRU",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "MinGRU",
    "MinLSTM",
    "MinGRUCell",
    "MinLSTMCell",
    "RecurrentLayer",
    "CRF",
    "LockedDropout",
    "embedding_dropout",
    "WeightDropRNN",
    "WeightDropLSTM",
    "WeightDropGRU",
    "trace",
    "Trace",
    "SAFE_GLOBALS",
    "to_torch",
]
