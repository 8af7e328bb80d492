"""The PyTorch engine: drop-in replacements for torch.nn's recurrent layers and cells.

    from rnnkit import nn as rnn
    lstm = rnn.LSTM(10, 20, num_layers=2, peephole=True)     # any torch.nn.LSTM argument, plus variants
"""
from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnkit.nn.layers import GRU, LSTM, RNN, RecurrentLayer

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "RecurrentLayer"]
