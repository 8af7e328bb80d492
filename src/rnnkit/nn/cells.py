"""Single-step cells: drop-ins for torch.nn.RNNCell, LSTMCell and GRUCell.

They run the same step functions as the layers (steps.py), with torch's cell parameter names
(`weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`, and `weight_ch` for peepholes).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.nn.layers import initialise
from rnnkit.nn.steps import gru_step, lstm_step, rnn_step
from rnnkit.spec import CellSpec, check_layer_sizes, parameter_shapes


class RecurrentCell(nn.Module):
    def __init__(self, spec: CellSpec, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        check_layer_sizes(input_size, hidden_size, 1, 0.0)
        self.spec, self.input_size, self.hidden_size, self.bias = spec, input_size, hidden_size, bias
        for name, shape in parameter_shapes(spec, input_size, hidden_size, bias).items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape, device=device, dtype=dtype)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        initialise(self, self.spec, self.hidden_size, [""])

    def forward(self, input: Tensor, hx=None):
        if not isinstance(input, Tensor) or input.dim() not in (1, 2):
            got = f"{input.dim()}-D" if isinstance(input, Tensor) else type(input).__name__
            raise ValueError(f"input: {type(self).__name__} expects a 2-D (batched) or 1-D (unbatched) tensor, got {got}")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(
                f"input: input.size(-1) must be equal to input_size. Expected {self.input_size}, got {input.shape[-1]}"
            )
        unbatched = input.dim() == 1
        x = input.unsqueeze(0) if unbatched else input  # (B, I)
        state = self._state(hx, x, unbatched)
        xw = nn.functional.linear(x, self.weight_ih, getattr(self, "bias_ih", None))  # (B, G*H)
        bias_hh = getattr(self, "bias_hh", None)
        if self.spec.kind == "lstm":
            new = lstm_step(self.spec, xw, state[0], state[1], self.weight_hh, bias_hh, getattr(self, "weight_ch", None))
        else:
            step = rnn_step if self.spec.kind == "rnn" else gru_step
            new = (step(self.spec, xw, state[0], self.weight_hh, bias_hh),)
        if unbatched:
            new = tuple(s.squeeze(0) for s in new)
        return new if self.spec.has_cell_state else new[0]

    def _state(self, hx, x: Tensor, unbatched: bool) -> tuple[Tensor, ...]:
        parts = 2 if self.spec.has_cell_state else 1
        shape = (x.shape[0], self.hidden_size)
        if hx is None:
            return tuple(x.new_zeros(shape) for _ in range(parts))
        states = tuple(hx) if parts == 2 else (hx,)
        if len(states) != parts or not all(isinstance(s, Tensor) for s in states):
            raise ValueError(f"hx: {type(self).__name__} expects {'a tuple (h, c) of tensors' if parts == 2 else 'a tensor h'}")
        expected = shape[1:] if unbatched else shape
        for s in states:
            if tuple(s.shape) != expected:
                raise RuntimeError(f"hx: expected a state of shape {expected}, got {tuple(s.shape)}")
        return tuple(s.unsqueeze(0) for s in states) if unbatched else states

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")
        if self.spec.variant_name != self.spec.kind:
            text += f", variant='{self.spec.variant_name}'"
        return text


class RNNCell(RecurrentCell):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        super().__init__(CellSpec("rnn", nonlinearity=nonlinearity), input_size, hidden_size, bias, device, dtype)

    @property
    def nonlinearity(self) -> str:
        return self.spec.nonlinearity


class LSTMCell(RecurrentCell):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None, *,
                 peephole=False, gates="ifo", coupled=False, forget_bias=0.0):
        spec = CellSpec("lstm", gates=gates, peephole=peephole, coupled=coupled, forget_bias=forget_bias)
        super().__init__(spec, input_size, hidden_size, bias, device, dtype)


class GRUCell(RecurrentCell):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None, *, reset="after", reset_gate=True):
        super().__init__(CellSpec("gru", reset=reset, reset_gate=reset_gate), input_size, hidden_size, bias, device, dtype)
