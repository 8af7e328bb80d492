"""Single-step cells: drop-ins for torch.nn.RNNCell, LSTMCell and GRUCell.

Dimension letters: B batch, I input size, H hidden size, G row blocks.

They subclass `torch.nn.RNNCellBase` (torch's parameter creation and initialisation) and carry
torch's cell parameter names (`weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`, and `weight_ch` for
peepholes). The standard cell runs torch's fused cell kernel, as torch.nn does; a variant runs one
step of rnnkit's fused kernel (rnnkit.nn.kernels), which with no gradient to record is one C++ call
(what sampling needs). `fused=False`, or an unavailable kernel, runs the same step functions as the
layers (steps.py).
"""

from __future__ import annotations

import torch
from torch import _VF, Tensor, nn

from rnnkit.nn import kernels
from rnnkit.nn.interop import HasTorchTwin
from rnnkit.nn.layers import check_fused, set_forget_bias, variant_repr
from rnnkit.nn.steps import CELL_WEIGHT_NAMES, cell_step
from rnnkit.spec import CellSpec

FUSED_CELL_KERNELS = {
    "rnn tanh": _VF.rnn_tanh_cell,
    "rnn relu": _VF.rnn_relu_cell,
    "lstm": _VF.lstm_cell,
    "gru": _VF.gru_cell,
}


class RecurrentCell(HasTorchTwin, nn.RNNCellBase):
    def __init__(
        self,
        spec: CellSpec,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        fused: bool | None = None,
    ):
        self.spec = spec  # before RNNCellBase.__init__, which calls reset_parameters (it reads the spec)
        super().__init__(input_size, hidden_size, bias, num_chunks=len(spec.blocks), device=device, dtype=dtype)
        self.fused = check_fused(fused)
        if spec.peephole_blocks:
            self.weight_ch = nn.Parameter(
                torch.empty(len(spec.peephole_blocks) * hidden_size, device=device, dtype=dtype)
            )
            self.reset_parameters()  # again, now that the peepholes exist

    def reset_parameters(self) -> None:
        """torch.nn's initialisation, U(-1/sqrt(H), 1/sqrt(H)), then the variant's forget-gate bias."""
        super().reset_parameters()
        set_forget_bias(self, self.spec, self.hidden_size, [""])

    def forward(self, input: Tensor, hx=None):
        name = self._torch_class.__name__  # torch's messages name its class
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        states = None if hx is None else self._state_tuple(hx)
        for index, state in enumerate(states or ()):
            if state.dim() not in (1, 2):
                which = f"hx[{index}]" if self.spec.has_cell_state else "hidden"
                raise ValueError(f"{name}: Expected {which} to be 1D or 2D, got {state.dim()}D instead")
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)  # (B, I)
        if states is None:
            zeros = torch.zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)  # (B, H)
            states = (zeros,) * (2 if self.spec.has_cell_state else 1)
        elif not batched:
            states = tuple(s.unsqueeze(0) for s in states)
        kernel = kernels.kernel_for(x) if self.fused and not self.spec.is_standard else None
        if self.fused and self.spec.is_standard:
            new = self._run_fused(x, states)
        else:
            self._check_shapes(x, states)
            p = {name: getattr(self, name, None) for name in CELL_WEIGHT_NAMES}  # reparametrised ones too
            if kernel is not None:
                sizes = torch.tensor([x.shape[0]], dtype=torch.int64)  # one step of batch B
                new = kernels.run_direction(kernel, self.spec, x, sizes, False, states, p)[1]
            else:
                new = cell_step(
                    self.spec, nn.functional.linear(x, p["weight_ih"], p["bias_ih"]), states, p
                )  # xw (B, GH)
        if not batched:
            new = tuple(s.squeeze(0) for s in new)
        return new if self.spec.has_cell_state else new[0]

    def _state_tuple(self, hx) -> tuple[Tensor, ...]:
        return tuple(hx) if self.spec.has_cell_state else (hx,)

    def _run_fused(self, x: Tensor, states: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """torch's cell kernel, called as torch.nn calls it (standard cells only)."""
        key = self.spec.kind if self.spec.kind != "rnn" else f"rnn {self.spec.nonlinearity}"
        hx = states if self.spec.has_cell_state else states[0]
        result = FUSED_CELL_KERNELS[key](x, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return tuple(result) if self.spec.has_cell_state else (result,)

    def _check_shapes(self, x: Tensor, states: tuple[Tensor, ...]) -> None:
        """The checks (and messages) of torch's cell kernels, for the equations path."""
        input_size, hidden_size = self.weight_ih.shape[1], self.weight_hh.shape[1]
        if x.shape[1] != input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {x.shape[1]} expected {input_size}")
        for label, state in enumerate(states):
            if state.shape[0] != x.shape[0]:
                raise RuntimeError(
                    f"Input batch size {x.shape[0]} doesn't match hidden{label} batch size {state.shape[0]}"
                )
            if state.shape[1] != hidden_size:
                raise RuntimeError(
                    f"hidden{label} has inconsistent hidden_size: got {state.shape[1]}, expected {hidden_size}"
                )

    def extra_repr(self) -> str:
        # getattr: a repr of a layer whose construction was refused (a traceback shows one) must not fail
        return super().extra_repr() + variant_repr(self.spec, getattr(self, "fused", True))


class RNNCell(RecurrentCell):
    _torch_class = nn.RNNCell

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None, *, fused=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(
            CellSpec("rnn", nonlinearity=nonlinearity), input_size, hidden_size, bias, device, dtype, fused
        )

    @property
    def nonlinearity(self) -> str:
        return self.spec.nonlinearity


class LSTMCell(RecurrentCell):
    _torch_class = nn.LSTMCell

    def __init__(
        self,
        input_size,
        hidden_size,
        bias=True,
        device=None,
        dtype=None,
        *,
        peephole=False,
        gates="ifo",
        coupled=False,
        forget_bias=0.0,
        fused=None,
    ):
        spec = CellSpec("lstm", gates=gates, peephole=peephole, coupled=coupled, forget_bias=forget_bias)
        super().__init__(spec, input_size, hidden_size, bias, device, dtype, fused)


class GRUCell(RecurrentCell):
    _torch_class = nn.GRUCell

    def __init__(
        self, input_size, hidden_size, bias=True, device=None, dtype=None, *, reset="after", reset_gate=True, fused=None
    ):
        super().__init__(
            CellSpec("gru", reset=reset, reset_gate=reset_gate), input_size, hidden_size, bias, device, dtype, fused
        )
