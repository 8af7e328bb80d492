"""The NumPy engine: RNN, LSTM, GRU, minGRU and minLSTM with hand-written backpropagation through time.

It never imports torch, and of rnnkit only `rnnkit.spec`. Float64 by default; arrays are time-major.

    from rnnkit import reference
    lstm = reference.LSTM(10, 20, num_layers=2, peephole=True, seed=0)
    output, (h_n, c_n) = lstm.forward(x)                          # x: (T, B, 10)
    d_x, (d_h0, d_c0), grads = lstm.backward(d_output, (d_h_n, d_c_n))
"""

from rnnkit.reference.crf import crf_log_partition, crf_log_partition_backward, crf_score, crf_viterbi
from rnnkit.reference.layers import GRU, LSTM, RNN, MinGRU, MinLSTM, RecurrentLayer

__all__ = [
    "RNN",
    "LSTM",
    "GRU",
    "MinGRU",
    "MinLSTM",
    "RecurrentLayer",
    "crf_log_partition",
    "crf_log_partition_backward",
    "crf_score",
    "crf_viterbi",
]
