"""Stacked, optionally bidirectional recurrent layers: drop-ins for torch.nn.RNN, LSTM and GRU.

Dimension letters: T time, B batch, I input size, H hidden size, G row blocks, L layers,
D directions (1 or 2).

The layers subclass `torch.nn.RNNBase`, so they share torch's own argument checks, its
`_flat_weights` bookkeeping (weights are read by name at every call, which is what makes weight
norm, pruning, parametrizations, `functional_call`, tying and re-assigned weights work), `all_weights`,
pickling and DataParallel replication. They do not subclass torch.nn.LSTM and its siblings: a
variant has other equations and another parameter layout than the torch class promises.

The forward pass has two engines. The fused one (the default) runs a whole direction of a layer in
one kernel call: torch.nn's own kernels for the standard LSTM and RNN (cuDNN on CUDA), and rnnkit's
kernel (rnnkit.nn.kernels: forward and hand-written backward) for the standard GRU on the CPU and for
every variant. With `fused=False`, or where rnnkit's kernel is unavailable (a failed build, a CUDA
tensor), it runs the equations of `steps.py` one step at a time, which autograd differentiates into
BPTT: the readable oracle the kernels are tested against.
"""

from __future__ import annotations

import torch
from torch import _VF, Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit.nn import kernels
from rnnkit.nn.interop import HasTorchTwin
from rnnkit.nn.steps import cell_parameters, cell_step
from rnnkit.spec import CellSpec, layer_parameter_groups, layer_suffix

FUSED_KERNELS = {"LSTM": _VF.lstm, "GRU": _VF.gru, "RNN_TANH": _VF.rnn_tanh, "RNN_RELU": _VF.rnn_relu}


def torch_mode(spec: CellSpec) -> str:
    """torch.nn.RNNBase's name for the cell kind: 'LSTM', 'GRU', 'RNN_TANH' or 'RNN_RELU'."""
    if spec.kind == "rnn":
        return "RNN_" + spec.nonlinearity.upper()
    return spec.kind.upper()


def check_fused(fused: object) -> bool:
    """The value of a layer's or cell's `fused` keyword: None (the default) and True choose a fused kernel."""
    if fused is not None and not isinstance(fused, bool):
        raise TypeError(f"fused should be of type bool or None, got: {type(fused).__name__}")
    return fused is not False


def uses_torch_kernel(spec: CellSpec, device: torch.device) -> bool:
    """Whether the fused path is torch.nn's own kernel: the standard LSTM and RNN everywhere, and the
    standard GRU off the CPU (on the CPU rnnkit's GRU kernel is the faster one, see BENCHMARKS.md)."""
    return spec.is_standard and (spec.kind != "gru" or device.type != "cpu")


def refuse_projection(proj_size: int) -> None:
    if proj_size:
        raise ValueError(
            f"proj_size: got {proj_size!r}; rnnkit layers support only proj_size=0 (no projection): "
            "the NumPy engine and the variants have no projection"
        )


def refuse_projection_keyword(proj_size) -> None:
    """torch.nn.RNN and GRU refuse the keyword itself, whatever its value."""
    if proj_size is not None:
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")


class RecurrentLayer(HasTorchTwin, nn.RNNBase):
    """The machinery shared by RNN, LSTM and GRU; a subclass only chooses its CellSpec."""

    _trace = None  # the rnnkit.nn.trace.Trace recording this layer's steps, while one does

    _input_rank_message: str  # torch.nn's message for input of the wrong rank, one per class

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
        # Set before RNNBase.__init__, which calls reset_parameters and flatten_parameters (both read it).
        self.spec = spec
        super().__init__(
            torch_mode(spec),
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device,
            dtype,
        )
        refuse_projection(proj_size)
        self.fused = check_fused(fused)
        groups = layer_parameter_groups(spec, input_size, hidden_size, num_layers, bias, bidirectional)
        if [name for group in groups for name in group] != self._flat_weights_names or any(
            tuple(getattr(self, name).shape) != shape for group in groups for name, shape in group.items()
        ):
            self._lay_out_variant(groups, {"device": device, "dtype": dtype})

    def _lay_out_variant(self, groups: list[dict[str, tuple[int, ...]]], factory: dict) -> None:
        """Replace torch's parameters by the variant's (other row blocks, peepholes), keeping torch's order."""
        for name in self._flat_weights_names:
            delattr(self, name)
        for group in groups:
            for name, shape in group.items():
                self.register_parameter(name, nn.Parameter(torch.empty(shape, **factory)))
        self._flat_weights_names = [name for group in groups for name in group]
        self._all_weights = [list(group) for group in groups]
        self._init_flat_weights()
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def reset_parameters(self) -> None:
        """torch.nn's initialisation, U(-1/sqrt(H), 1/sqrt(H)), then the variant's forget-gate bias."""
        super().reset_parameters()
        suffixes = [
            layer_suffix(layer, direction == 1)
            for layer in range(self.num_layers)
            for direction in range(self.num_directions)
        ]
        set_forget_bias(self, self.spec, self.hidden_size, suffixes)

    def flatten_parameters(self) -> None:
        """torch.nn's (cuDNN packs the weights on CUDA) for the standard cell; variants keep theirs as they are."""
        if self.spec.is_standard:
            super().flatten_parameters()

    # ---- forward: torch.nn's checks and plumbing around one of two engines -------------------
    def forward(self, input, hx=None):
        self._update_flat_weights()  # weights read by name: re-assigned or reparametrised ones included
        packed = isinstance(input, PackedSequence)
        batched = True
        if packed:
            input, batch_sizes, sorted_indices, unsorted_indices = input
        else:
            batch_sizes = sorted_indices = unsorted_indices = None
            batched = self._check_ranks(input, hx)
            if not batched:
                input = input.unsqueeze(0 if self.batch_first else 1)
                if hx is not None:
                    hx = self._public_state(tuple(s.unsqueeze(1) for s in self._state_tuple(hx)))
        if hx is None:
            hx = self._public_state(self._zero_state(input, batch_sizes))
        else:
            hx = self.permute_hidden(hx, sorted_indices)  # the state follows the packed (sorted) order
        self.check_forward_args(input, hx, batch_sizes)
        if batch_sizes is None and input.shape[1 if self.batch_first else 0] == 0:
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")  # torch's kernels' check
        run = self._run_fused if self.fused and self._trace is None else self._run_equations
        output, hidden = run(input, batch_sizes, hx)
        if self._trace is not None:
            self._trace.commit(unsorted_indices)
        if packed:
            output = PackedSequence(output, batch_sizes, sorted_indices, unsorted_indices)
        elif not batched:
            output = output.squeeze(0 if self.batch_first else 1)
            hidden = self._public_state(tuple(s.squeeze(1) for s in self._state_tuple(hidden)))
        return output, self.permute_hidden(hidden, unsorted_indices)

    def _check_ranks(self, input: Tensor, hx) -> bool:
        """torch.nn's rank checks of input and hx (RNN and GRU; LSTM has its own). True if batched."""
        if input.dim() not in (2, 3):
            raise ValueError(self._input_rank_message.format(rank=input.dim()))
        batched = input.dim() == 3
        if hx is not None and hx.dim() != input.dim():
            kind = "batched 3-D" if batched else "unbatched 2-D"
            raise RuntimeError(f"For {kind} input, hx should also be {input.dim()}-D but got {hx.dim()}-D tensor")
        return batched

    def _zero_state(self, input: Tensor, batch_sizes: Tensor | None) -> tuple[Tensor, ...]:
        shape = self.get_expected_hidden_size(input, batch_sizes)
        parts = 2 if self.spec.has_cell_state else 1
        return tuple(torch.zeros(shape, dtype=input.dtype, device=input.device) for _ in range(parts))

    def _state_tuple(self, state) -> tuple[Tensor, ...]:
        return tuple(state) if self.spec.has_cell_state else (state,)

    def _public_state(self, state: tuple[Tensor, ...]):
        return state if self.spec.has_cell_state else state[0]

    def effective_weights(self) -> list[Tensor]:
        """The weights both engines compute with, in `_flat_weights_names` order: the parameters as
        they are (reparametrised ones included). A subclass may return others, e.g. DropConnect's
        masked weight_hh (rnnkit.nn.regularisers.WeightDrop); the fused kernel takes them all the same."""
        return self._flat_weights

    def _run_fused(self, input: Tensor, batch_sizes: Tensor | None, hx):
        if not uses_torch_kernel(self.spec, input.device):
            kernel = kernels.kernel_for(input)
            if kernel is None:
                return self._run_equations(input, batch_sizes, hx)
            return self._run_kernel(kernel, input, batch_sizes, hx)
        return self._run_torch_kernel(input, batch_sizes, hx)

    def _run_torch_kernel(self, input: Tensor, batch_sizes: Tensor | None, hx):
        """torch.nn's own kernels (cuDNN on CUDA), for the standard cell only, called as torch.nn calls them."""
        kernel = FUSED_KERNELS[self.mode]
        options = (self.bias, self.num_layers, self.dropout, self.training, self.bidirectional)
        weights = self.effective_weights()
        if batch_sizes is None:
            result = kernel(input, hx, weights, *options, self.batch_first)
        else:
            result = kernel(input, batch_sizes, hx, weights, *options)
        return result[0], self._public_state(tuple(result[1:]))

    def _run_kernel(self, kernel, input: Tensor, batch_sizes: Tensor | None, hx):
        """rnnkit's kernel, one call per direction and layer, on packed rows: a packed batch as it is,
        a padded one as T steps of batch B."""
        state = self._state_tuple(hx)
        if batch_sizes is None:
            x = input.transpose(0, 1) if self.batch_first else input  # (T, B, I)
            T, B = x.shape[:2]
            rows = x.reshape(T * B, x.shape[2])  # (N, I)
            sizes = torch.full((T,), B, dtype=torch.int64)
        else:
            rows, sizes = input, batch_sizes

        def direction(rows: Tensor, initial: tuple[Tensor, ...], p: dict, reverse: bool, suffix: str):
            if p["bias_hh"] is not None and self.spec.kind != "gru":  # b_hh only adds to the pre-activation
                p = {**p, "bias_ih": p["bias_ih"] + p["bias_hh"], "bias_hh": None}
            return kernels.run_direction(kernel, self.spec, rows, sizes, reverse, initial, p)

        rows, final_state = self._stack_layers(rows, state, direction)  # (N, D*H)
        if batch_sizes is None:
            rows = rows.reshape(T, B, rows.shape[-1])
            rows = rows.transpose(0, 1) if self.batch_first else rows
        return rows, self._public_state(final_state)

    def _run_equations(self, input: Tensor, batch_sizes: Tensor | None, hx):
        """The equations engine on the same input forms as the fused kernels: a padded batch, or
        the data and batch sizes of a packed one (sorted by length, as hx already is)."""
        state = self._state_tuple(hx)
        if batch_sizes is None:
            x = input.transpose(0, 1) if self.batch_first else input  # (T, B, I)
            output, state = self._run_layers(x, None, state)
            output = output.transpose(0, 1) if self.batch_first else output
        else:
            x, lengths = pad_packed_sequence(PackedSequence(input, batch_sizes))  # (T, B, I)
            output, state = self._run_layers(x, lengths, state)
            output = pack_padded_sequence(output, lengths).data
        return output, self._public_state(state)

    def _run_layers(self, x: Tensor, lengths: Tensor | None, state: tuple[Tensor, ...]):
        """The layers of EQUATIONS.md ("Cells and layers") step by step: x (T, B, I), state tuple of (L*D, B, H)."""
        mask = None
        if lengths is not None:
            mask = (torch.arange(x.shape[0])[:, None] < lengths[None, :]).to(x.device)  # (T, B)

        def direction(x: Tensor, initial: tuple[Tensor, ...], p: dict, reverse: bool, suffix: str):
            return self._run_direction(x, mask, lengths, initial, p, reverse, suffix[1:])

        return self._stack_layers(x, state, direction)

    def _stack_layers(self, x: Tensor, state: tuple[Tensor, ...], direction):
        """The layers and directions around either engine's `direction(x, initial state, cell parameters,
        reverse, suffix) -> (output, final state)`: directions concatenated, dropout between layers in
        training. x is (..., I) in the engine's layout; returns (..., D*H) and the state tuple of (L*D, B, H)."""
        weights = dict(zip(self._flat_weights_names, self.effective_weights()))
        finals: list[tuple[Tensor, ...]] = []
        for layer in range(self.num_layers):
            outputs = []
            for reverse in (False, True)[: self.num_directions]:
                suffix = layer_suffix(layer, reverse)
                initial = tuple(s[layer * self.num_directions + int(reverse)] for s in state)
                output, final = direction(x, initial, cell_parameters(weights, suffix), reverse, suffix)
                outputs.append(output)
                finals.append(final)
            x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]  # (..., D*H)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = nn.functional.dropout(x, self.dropout, training=True)
        return x, tuple(torch.stack(parts) for parts in zip(*finals))  # each (L*D, B, H)

    def _run_direction(self, x, mask, lengths, state, p, reverse, name):
        if reverse:
            x = reverse_padded(x, lengths)
        xw = nn.functional.linear(x, p["weight_ih"], p["bias_ih"])  # (T, B, G*H)
        outputs, records = [], [] if self._trace is not None else None
        for t in range(x.shape[0]):
            record = {} if records is not None else None
            new_state = cell_step(self.spec, xw[t], state, p, record)
            if mask is not None:  # past a sequence's end its state stays as it was
                new_state = tuple(torch.where(mask[t, :, None], n, s) for n, s in zip(new_state, state))
            state = new_state
            outputs.append(state[0])
            if records is not None:
                records.append(record)
        output = torch.stack(outputs)  # (T, B, H)
        if mask is not None:
            output = output * mask[..., None].to(output.dtype)  # padded steps output zeros, as torch
        if reverse:
            output = reverse_padded(output, lengths)
        if records is not None:
            self._trace.add(self, name, records, mask, lengths, reverse)
        return output, state

    def extra_repr(self) -> str:
        # getattr: a repr of a layer whose construction was refused (a traceback shows one) must not fail
        return super().extra_repr() + variant_repr(self.spec, getattr(self, "fused", True))


def variant_repr(spec: CellSpec, fused: bool) -> str:
    """The constructor keywords that differ from torch's defaults, as a repr shows them."""
    keywords = spec.changed_keywords()
    if not fused:
        keywords["fused"] = False
    return "".join(f", {name}={value!r}" for name, value in keywords.items())


@torch.no_grad()
def set_forget_bias(module: nn.Module, spec: CellSpec, hidden_size: int, suffixes: list[str]) -> None:
    """The total forget-gate bias b_if + b_hf of each cell (one per suffix) starts at spec.forget_bias:
    b_if = forget_bias, b_hf = 0. A forget_bias of 0 keeps torch's initialisation."""
    if spec.kind != "lstm" or not spec.forget_bias or "f" not in spec.blocks:
        return
    rows = slice(spec.blocks.index("f") * hidden_size, (spec.blocks.index("f") + 1) * hidden_size)
    for suffix in suffixes:
        if getattr(module, "bias_ih" + suffix, None) is not None:
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


class RNN(RecurrentLayer):
    """Elman RNN, h_t = φ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), φ = tanh or relu."""

    _torch_class = nn.RNN
    _input_rank_message = "RNN: Expected input to be 2D or 3D, got {rank}D tensor instead"

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        nonlinearity="tanh",
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        device=None,
        dtype=None,
        *,
        fused=None,
        proj_size=None,
    ):
        refuse_projection_keyword(proj_size)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(
            CellSpec("rnn", nonlinearity=nonlinearity),
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            device,
            dtype,
            fused,
        )

    @property
    def nonlinearity(self) -> str:
        return self.spec.nonlinearity


class LSTM(RecurrentLayer):
    """LSTM (gate order i, f, g, o) with optional peepholes, removed gates, CIFG and a forget bias."""

    _torch_class = nn.LSTM
    _input_rank_message = "LSTM: Expected input to be 2D or 3D, got {rank}D instead"

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        proj_size=0,
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
        super().__init__(
            spec,
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device,
            dtype,
            fused,
        )

    # The (h, c) state is checked and permuted by torch.nn.LSTM's own methods, so its messages are torch's.
    get_expected_cell_size = nn.LSTM.get_expected_cell_size
    check_forward_args = nn.LSTM.check_forward_args
    permute_hidden = nn.LSTM.permute_hidden

    def _check_ranks(self, input: Tensor, hx) -> bool:
        if input.dim() not in (2, 3):
            raise ValueError(self._input_rank_message.format(rank=input.dim()))
        batched = input.dim() == 3
        if hx is not None and (hx[0].dim() != input.dim() or hx[1].dim() != input.dim()):
            kind = "batched 3-D" if batched else "unbatched 2-D"
            raise RuntimeError(
                f"For {kind} input, hx and cx should also be {input.dim()}-D "
                f"but got ({hx[0].dim()}-D, {hx[1].dim()}-D) tensors"
            )
        return batched


class GRU(RecurrentLayer):
    """GRU (gate order r, z, n); z is the keep gate (the lectures' update gate u = 1 - z)."""

    _torch_class = nn.GRU
    _input_rank_message = "GRU: Expected input to be 2D or 3D, got {rank}D instead"

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        device=None,
        dtype=None,
        *,
        reset="after",
        reset_gate=True,
        fused=None,
        proj_size=None,
    ):
        refuse_projection_keyword(proj_size)
        spec = CellSpec("gru", reset=reset, reset_gate=reset_gate)
        super().__init__(
            spec,
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            device,
            dtype,
            fused,
        )
