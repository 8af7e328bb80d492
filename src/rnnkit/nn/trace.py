"""Recording what happens inside recurrent layers, step by step.

    with rnnkit.nn.trace(model) as t:
        model(x)
    t["rnn.l0"]["f"]          # forget-gate activations of layer 0 of the module `model.rnn`: (T, B, H)
    t["rnn.l1_reverse"]["c"]  # cell states of layer 1's reverse direction

While the context is open every rnnkit.nn layer inside the model runs its step-by-step equations (the
fused kernels compute no gates one can see; minGRU and minLSTM keep their scan unless keep_graph, their
gates being functions of x_t alone) and records, per layer and direction, each step's gates
(i, f, g, o for an LSTM variant that has them; r, z, n for a GRU; z and g for minGRU, the normalised f and
i and g for minLSTM) and states (c, h), as tensors of
shape (T, B, H) in the input's time order (a reverse direction's values are put back in that order).
Padded steps of a packed batch hold zeros. A second call appends along time. The values are detached
unless `keep_graph=True` (rnnkit.analysis.gradient_flow needs the graph). Outside the context the
layers are exactly as before: tracing off costs one attribute check per call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from rnnkit.nn.layers import RecurrentLayer, reverse_padded
from rnnkit.nn.minimal import MinimalLayer


class Trace:
    def __init__(self, names: dict[int, str], keep_graph: bool) -> None:
        self.names, self.keep_graph = names, keep_graph
        self.records: dict[str, dict[str, Tensor]] = {}
        self.steps: dict[str, list[dict[str, Tensor]]] = {}  # with keep_graph: the step tensors themselves
        self.pending: dict[str, dict[str, Tensor]] = {}  # this call's, until the layer commits them

    def add(
        self, layer: RecurrentLayer, direction: str, steps: list[dict[str, Tensor]], mask, lengths, reverse: bool
    ) -> None:
        prefix = self.names[id(layer)]
        key = f"{prefix}.{direction}" if prefix else direction
        values = {}
        for name in steps[0]:
            stacked = torch.stack([step[name] for step in steps])  # (T, B, H)
            if not self.keep_graph:
                stacked = stacked.detach()
            if mask is not None:
                stacked = stacked * mask[..., None].to(stacked.dtype)
            values[name] = reverse_padded(stacked, lengths) if reverse else stacked
        self.pending[key] = values
        if self.keep_graph:  # gradients are taken with respect to the tensors the steps computed
            self.steps[key] = self.steps.get(key, []) + (steps[::-1] if reverse else steps)

    def commit(self, permutation: Tensor | None) -> None:
        """End a layer's call: its values join the records, in the caller's batch order (a packed batch
        runs sorted by length)."""
        for key, values in self.pending.items():
            if permutation is not None:
                values = {name: value.index_select(1, permutation) for name, value in values.items()}
            if key in self.records:  # a later call continues in time
                values = {name: torch.cat([self.records[key][name], value]) for name, value in values.items()}
            self.records[key] = values
        self.pending = {}

    def __getitem__(self, key: str) -> dict[str, Tensor]:
        if key not in self.records:
            raise KeyError(f"no trace named {key!r}; recorded: {', '.join(self.records) or 'nothing yet'}")
        return self.records[key]

    def keys(self):
        return self.records.keys()


@contextmanager
def trace(model: nn.Module, keep_graph: bool = False) -> Iterator[Trace]:
    """Trace every rnnkit.nn recurrent layer inside `model` (the model itself may be one)."""
    layers = [
        (name, module) for name, module in model.named_modules() if isinstance(module, (RecurrentLayer, MinimalLayer))
    ]
    if not layers:
        raise ValueError(
            f"trace: {type(model).__name__} holds no rnnkit.nn recurrent layer (RNN, LSTM, GRU, MinGRU or MinLSTM)"
        )
    recorder = Trace({id(module): name for name, module in layers}, keep_graph)
    for _, module in layers:
        module._trace = recorder
    try:
        yield recorder
    finally:
        for _, module in layers:
            module._trace = None
