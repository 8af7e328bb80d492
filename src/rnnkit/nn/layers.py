"""Stacked, optionally bidirectional recurrent layers: drop-ins for torch.nn.RNN, LSTM and GRU.

Dimension letters: T time, B batch, I input size, H hidden size, G row blocks, L layers,
D directions (1 or 2).

Parameters carry torch.nn's names, shapes and gate order, so a torch.nn state_dict loads with
`strict=True` and back. When the variant is exactly torch's (CellSpec.is_standard), the forward pass
goes to the same fused kernels torch.nn uses; otherwise (or with `fused=False`) it runs the
equations of `steps.py` one step at a time, which autograd differentiates into BPTT.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, _VF, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit.nn.steps import gru_step, lstm_step, rnn_step
from rnnkit.spec import CellSpec, check_layer_sizes, layer_parameter_shapes, layer_suffix


class RecurrentLayer(nn.Module):
    """The machinery shared by RNN, LSTM and GRU; a subclass only chooses its CellSpec."""

    def __init__(
        self,
        spec: CellSpec,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        fused: bool | None = None,
    ) -> None:
        super().__init__()
        check_layer_sizes(input_size, hidden_size, num_layers, dropout)
        if proj_size:
            raise ValueError(f"proj_size: got {proj_size!r}; rnnkit layers support only proj_size=0 (no projection)")
        if fused and not spec.is_standard:
            raise ValueError(
                f"fused: fused=True needs the standard torch.nn cell, got the variant '{spec.variant_name}'; "
                "use fused=None (automatic) or fused=False"
            )
        self.spec = spec
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, 0
        self.fused = spec.is_standard if fused is None else fused
        shapes = layer_parameter_shapes(spec, input_size, hidden_size, num_layers, bias, bidirectional)
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape, device=device, dtype=dtype)))
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def reset_parameters(self) -> None:
        suffixes = [layer_suffix(layer, direction == 1)
                    for layer in range(self.num_layers) for direction in range(self.num_directions)]
        initialise(self, self.spec, self.hidden_size, suffixes)

    def flatten_parameters(self) -> None:
        """Accepted for compatibility with torch.nn; the parameters are used as they are."""

    def cell_parameters(self, layer: int, direction: int) -> dict[str, Tensor | None]:
        suffix = layer_suffix(layer, direction == 1)
        return {
            name: getattr(self, name + suffix, None)
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_ch")
        }

    # ---- forward -------------------------------------------------------------------------
    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        if not isinstance(input, Tensor) or input.dim() not in (2, 3):
            got = f"{input.dim()}-D" if isinstance(input, Tensor) else type(input).__name__
            raise ValueError(
                f"input: {type(self).__name__} expects a 3-D (batched) or 2-D (unbatched) tensor, got {got}"
            )
        unbatched = input.dim() == 2
        x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first else input)  # (T, B, I)
        self._check_input(x)
        state = self._initial_state(hx, x, x.shape[1], unbatched)
        if self.fused:
            output, state = self._run_fused(x, None, state)
        else:
            output, state = self._run_equations(x, None, state)
        if unbatched:
            return output.squeeze(1), self._public_state(tuple(s.squeeze(1) for s in state))
        return (output.transpose(0, 1) if self.batch_first else output), self._public_state(state)

    def _forward_packed(self, packed: PackedSequence, hx):
        data, batch_sizes, sorted_indices, unsorted_indices = packed
        if data.dim() != 2:
            raise ValueError(f"input: the data of a PackedSequence must be 2-D (steps, features), got {data.dim()}-D")
        self._check_input(data)
        state = self._initial_state(hx, data, int(batch_sizes[0]), unbatched=False)
        if self.fused:
            sorted_state = tuple(_permute(s, sorted_indices) for s in state)
            output_data, sorted_state = self._run_fused(data, batch_sizes, sorted_state)
            state = tuple(_permute(s, unsorted_indices) for s in sorted_state)
        else:
            x, lengths = pad_packed_sequence(packed)  # (T, B, I) in the caller's batch order
            output, state = self._run_equations(x, lengths, state)
            if sorted_indices is not None:
                output, lengths = output.index_select(1, sorted_indices), lengths[sorted_indices.cpu()]
            output_data = pack_padded_sequence(output, lengths, enforce_sorted=True).data
        output = PackedSequence(output_data, batch_sizes, sorted_indices, unsorted_indices)
        return output, self._public_state(state)

    def _run_fused(self, x: Tensor, batch_sizes: Tensor | None, state: tuple[Tensor, ...]):
        """torch.nn's own kernels (cuDNN on CUDA), for the standard cell only."""
        kernel = {"lstm": _VF.lstm, "gru": _VF.gru}.get(self.spec.kind) or (
            _VF.rnn_tanh if self.spec.nonlinearity == "tanh" else _VF.rnn_relu
        )
        hx = state if self.spec.has_cell_state else state[0]
        weights = list(self.parameters(recurse=False))
        options = (self.bias, self.num_layers, self.dropout, self.training, self.bidirectional)
        if batch_sizes is None:
            result = kernel(x, hx, weights, *options, False)
        else:
            result = kernel(x, batch_sizes, hx, weights, *options)
        return result[0], tuple(result[1:])

    def _run_equations(self, x: Tensor, lengths: Tensor | None, state: tuple[Tensor, ...]):
        """The layers of EQUATIONS.md step by step: x (T, B, I), state tuple of (L*D, B, H)."""
        T = x.shape[0]
        mask = None
        if lengths is not None:
            mask = torch.arange(T)[:, None] < lengths[None, :]  # (T, B)
            mask = mask.to(x.device)
        finals: list[tuple[Tensor, ...]] = []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                initial = tuple(s[index] for s in state)
                output, final = self._run_direction(layer_input, mask, lengths, initial, layer, direction)
                outputs.append(output)
                finals.append(final)
            layer_input = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]  # (T, B, D*H)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = nn.functional.dropout(layer_input, self.dropout, training=True)
        final_state = tuple(torch.stack(parts) for parts in zip(*finals))  # each (L*D, B, H)
        return layer_input, final_state

    def _run_direction(self, x, mask, lengths, state, layer, direction):
        p = self.cell_parameters(layer, direction)
        reverse = direction == 1
        if reverse:
            x = reverse_padded(x, lengths)
        xw = nn.functional.linear(x, p["weight_ih"], p["bias_ih"])  # (T, B, G*H)
        outputs = []
        for t in range(x.shape[0]):
            new_state = self._step(xw[t], state, p)
            if mask is not None:  # past a sequence's end its state stays as it was
                new_state = tuple(torch.where(mask[t, :, None], n, s) for n, s in zip(new_state, state))
            state = new_state
            outputs.append(state[0])
        output = torch.stack(outputs)  # (T, B, H)
        if mask is not None:
            output = output * mask[..., None].to(output.dtype)  # padded steps output zeros, as torch
        if reverse:
            output = reverse_padded(output, lengths)
        return output, state

    def _step(self, xw: Tensor, state: tuple[Tensor, ...], p: dict[str, Tensor | None]) -> tuple[Tensor, ...]:
        if self.spec.kind == "lstm":
            return lstm_step(self.spec, xw, state[0], state[1], p["weight_hh"], p["bias_hh"], p["weight_ch"])
        step = rnn_step if self.spec.kind == "rnn" else gru_step
        return (step(self.spec, xw, state[0], p["weight_hh"], p["bias_hh"]),)

    # ---- argument checks and state plumbing ---------------------------------------------
    def _check_input(self, x: Tensor) -> None:
        weight = self.weight_ih_l0
        if x.dtype != weight.dtype:
            raise ValueError(
                f"input: dtype {x.dtype} does not match the weights' dtype {weight.dtype}; "
                f"convert the input with .to({weight.dtype}) or the layer with .to({x.dtype})"
            )
        if x.shape[-1] != self.input_size:
            raise RuntimeError(
                f"input: input.size(-1) must be equal to input_size. Expected {self.input_size}, got {x.shape[-1]}"
            )

    def _initial_state(self, hx, x: Tensor, batch_size: int, unbatched: bool) -> tuple[Tensor, ...]:
        """hx as a tuple of (L*D, B, H) tensors: (h,) or, for an LSTM, (h, c)."""
        shape = (self.num_layers * self.num_directions, batch_size, self.hidden_size)
        parts = 2 if self.spec.has_cell_state else 1
        if hx is None:
            return tuple(x.new_zeros(shape) for _ in range(parts))
        if parts == 2:
            if not (isinstance(hx, (tuple, list)) and len(hx) == 2 and all(isinstance(s, Tensor) for s in hx)):
                raise ValueError(f"hx: {type(self).__name__} expects a tuple (h_0, c_0) of tensors, got {type(hx).__name__}")
            states = tuple(hx)
        else:
            if not isinstance(hx, Tensor):
                raise ValueError(f"hx: {type(self).__name__} expects a tensor h_0, got {type(hx).__name__}")
            states = (hx,)
        names = ("h_0", "c_0")
        expected = shape[::2] if unbatched else shape
        for name, s in zip(names, states):
            if tuple(s.shape) != expected:
                raise RuntimeError(f"hx: expected {name} of shape {expected} (layers*directions, batch, hidden), got {tuple(s.shape)}")
        return tuple(s.unsqueeze(1) for s in states) if unbatched else states

    def _public_state(self, state: tuple[Tensor, ...]):
        return state if self.spec.has_cell_state else state[0]

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0), ("bidirectional", False)):
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        if self.spec.variant_name != self.spec.kind:
            text += f", variant='{self.spec.variant_name}'"
        return text


@torch.no_grad()
def initialise(module: nn.Module, spec: CellSpec, hidden_size: int, suffixes: list[str]) -> None:
    """torch.nn's initialisation, U(-1/sqrt(H), 1/sqrt(H)); then the forget-gate biases, if set:
    the total b_if + b_hf of each cell (one per suffix) starts at spec.forget_bias (0 keeps torch's)."""
    bound = 1.0 / math.sqrt(hidden_size)
    for weight in module.parameters():
        weight.uniform_(-bound, bound)
    if spec.kind != "lstm" or not spec.forget_bias or "f" not in spec.blocks:
        return
    rows = slice(spec.blocks.index("f") * hidden_size, (spec.blocks.index("f") + 1) * hidden_size)
    for suffix in suffixes:
        if hasattr(module, "bias_ih" + suffix):
            getattr(module, "bias_ih" + suffix)[rows] = spec.forget_bias
            getattr(module, "bias_hh" + suffix)[rows] = 0.0


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of x (T, B, F) within its own length; padded steps stay in place."""
    if lengths is None:
        return x.flip(0)
    T = x.shape[0]
    t = torch.arange(T)[:, None]  # (T, 1)
    index = torch.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # (T, B)
    return x.gather(0, index.to(x.device)[..., None].expand_as(x))


def _permute(state: Tensor, permutation: Tensor | None) -> Tensor:
    return state if permutation is None else state.index_select(1, permutation)


class RNN(RecurrentLayer):
    """Elman RNN, h_t = φ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), φ = tanh or relu."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None, *, fused=None):
        super().__init__(CellSpec("rnn", nonlinearity=nonlinearity), input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, 0, device, dtype, fused)

    @property
    def nonlinearity(self) -> str:
        return self.spec.nonlinearity


class LSTM(RecurrentLayer):
    """LSTM (gate order i, f, g, o) with optional peepholes, removed gates, CIFG and a forget bias."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None, *, peephole=False, gates="ifo",
                 coupled=False, forget_bias=0.0, fused=None):
        spec = CellSpec("lstm", gates=gates, peephole=peephole, coupled=coupled, forget_bias=forget_bias)
        super().__init__(spec, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype, fused)


class GRU(RecurrentLayer):
    """GRU (gate order r, z, n); z is the keep gate (the lectures' update gate u = 1 - z)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None, *, reset="after", reset_gate=True, fused=None):
        spec = CellSpec("gru", reset=reset, reset_gate=reset_gate)
        super().__init__(spec, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype, fused)
