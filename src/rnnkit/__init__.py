"""rnnkit: recurrent neural networks for NLP, written from their textbook equations.

`rnnkit.nn` is the PyTorch engine (drop-in for torch.nn.RNN/LSTM/GRU and their cells);
`rnnkit.reference` is the NumPy engine with hand-written backpropagation through time.
Importing `rnnkit` itself imports neither torch nor numpy.
"""

__version__ = "0.1.0"
