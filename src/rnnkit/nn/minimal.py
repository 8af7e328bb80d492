"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): gates that read only x_t, so the
recurrence is linear in h and a whole sequence is one prefix scan (EQUATIONS.md, "Minimal cells").

    minGRU:   z_t = σ(k_t)  with k_t = W_z x_t + b_z,   h̃_t = g(W_h x_t + b_h)
              h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t
    minLSTM:  f'_t, i'_t = f_t / (f_t + i_t), i_t / (f_t + i_t)  with f_t = σ(W_f x_t + b_f), i_t = σ(W_i x_t + b_i)
              h_t = f'_t ⊙ h_{t−1} + i'_t ⊙ h̃_t

g(x) = x + 0.5 for x ≥ 0, σ(x) below: a positive h̃, so that the scan can run in log space (Heinsen 2023).

Dimension letters: T time, B batch, I input size, H hidden size, G row blocks (2 or 3), L layers, D directions.

Every step is h_t = a_t ⊙ h_{t−1} + b_t with a_t in (0, 1) and b_t > 0. `mode="sequential"` runs that loop;
`mode="parallel"` (the default for a sequence longer than one step) computes, for a zero initial state,

    log h_t = A_t + logcumsumexp_{k ≤ t}(log b_k − A_k),     A_t = Σ_{k ≤ t} log a_k

and adds the initial state's part, exp(A_t) ⊙ h_0, outside the logarithms, so an initial state of any
sign is exact. It scans chunks of CHUNK steps and carries the state between them, which keeps A_t small.
In a packed batch a sequence's padded steps come after its last real one: they are computed, never read
(the final state is taken at the last real step, the outputs there are zeros).
The layers take what rnnkit's other layers take (stacking, bidirectional, dropout between layers,
batch_first, PackedSequence, a carried state in and out) and have torch.nn-style parameter names,
weight_ih_l{k}[_reverse] (G*H, I) and bias_ih_l{k}[_reverse] (G*H,); they have no weight_hh.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit.nn.layers import reverse_padded
from rnnkit.spec import CellSpec, check_layer_sizes, layer_parameter_shapes, layer_suffix, parameter_shapes

MODES = ("parallel", "sequential")
CHUNK = 64  # steps scanned from one start (scan_parallel)


def log_g(x: Tensor) -> Tensor:
    """log g(x): log(x + 0.5) for x ≥ 0, log σ(x) below (both sides evaluated safely)."""
    return torch.where(x >= 0, torch.log(x.clamp(min=0) + 0.5), F.logsigmoid(x.clamp(max=0)))


def g(x: Tensor) -> Tensor:
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_coefficients(kind: str, pre: Tensor) -> tuple[Tensor, Tensor]:
    """(log a_t, log b_t), each (..., H), from the pre-activations (..., G*H) of one step or many."""
    blocks = pre.chunk(3 if kind == "minlstm" else 2, dim=-1)
    if kind == "mingru":
        k, candidate = blocks
        log_a = -F.softplus(k)  # log(1 − σ(k))
        return log_a, log_a + k + log_g(candidate)  # log σ(k) = k − softplus(k)
    k_f, k_i, candidate = blocks
    difference = F.softplus(-k_f) - F.softplus(-k_i)  # d = log(i / f)
    log_a = -F.softplus(difference)  # log f'
    return log_a, log_a + difference + log_g(candidate)  # log i' = log f' + d


def coefficients(kind: str, pre: Tensor) -> tuple[Tensor, Tensor]:
    """(a_t, b_t) in ordinary space: what the sequential mode computes with. minLSTM's normalised gates are
    σ(∓d) with d = log(i / f), which stays finite where f + i underflows."""
    blocks = pre.chunk(3 if kind == "minlstm" else 2, dim=-1)
    if kind == "mingru":
        return torch.sigmoid(-blocks[0]), torch.sigmoid(blocks[0]) * g(blocks[1])  # 1 − z as σ(−k): exact near z = 1
    difference = F.softplus(-blocks[0]) - F.softplus(-blocks[1])
    return torch.sigmoid(-difference), torch.sigmoid(difference) * g(blocks[2])


def scan_parallel(kind: str, pre: Tensor, h0: Tensor) -> Tensor:
    """Every h_t (T, B, H) of one direction by the log-space scan; pre (T, B, G*H), h0 (B, H).

    The scan runs in chunks of CHUNK steps, each from its own start, and the chunks are joined by carrying
    the state across them: the cumulative sum of log a_t restarts at every chunk, so its size (and the
    precision it costs) stays bounded however long the sequence and however saturated the gates.
    Half-precision inputs are scanned in float32."""
    if pre.dtype in (torch.float16, torch.bfloat16):
        return scan_parallel(kind, pre.float(), h0.float()).to(pre.dtype)
    log_a, log_b = log_coefficients(kind, pre)  # each (T, B, H)
    steps = log_a.shape[0]
    chunks = -(-steps // CHUNK)
    size = CHUNK if chunks > 1 else steps
    padding = chunks * size - steps  # steps past the end, log a = log b = 0: finite, never read
    if padding:
        log_a = F.pad(log_a, (0, 0, 0, 0, 0, padding))
        log_b = F.pad(log_b, (0, 0, 0, 0, 0, padding))
    log_a, log_b = (v.reshape(chunks, size, *v.shape[1:]) for v in (log_a, log_b))  # (N, C, B, H)
    cumulative = torch.cumsum(log_a, dim=1)  # A_t within each chunk
    zero_start = torch.exp(cumulative + torch.logcumsumexp(log_b - cumulative, dim=1))  # (N, C, B, H)
    decay = torch.exp(cumulative)  # (N, C, B, H)
    starts, h = [], h0
    for last, kept in zip(zero_start[:, -1].unbind(0), decay[:, -1].unbind(0)):  # the state entering each chunk
        starts.append(h)
        h = last + kept * h
    states = zero_start + decay * torch.stack(starts)[:, None]  # (N, C, B, H)
    return states.reshape(chunks * size, *states.shape[2:])[:steps]


def scan_sequential(kind: str, pre: Tensor, h0: Tensor, steps: list | None = None) -> Tensor:
    """Every h_t (T, B, H) of one direction, one step at a time; `steps`, if given, receives each step's
    h_t itself (what a trace with keep_graph differentiates with respect to)."""
    a, b = coefficients(kind, pre)
    h, outputs = h0, [] if steps is None else steps
    for a_t, b_t in zip(a.unbind(0), b.unbind(0)):  # unbind: one backward for all steps, not a select per step
        h = a_t * h + b_t
        outputs.append(h)
    return torch.stack(outputs)


def traced_values(kind: str, pre: Tensor) -> dict[str, Tensor]:
    """What rnnkit.nn.trace records of a minimal cell besides h: its gates (minLSTM's normalised f' and i')
    and its candidate g(h̃), each (T, B, H)."""
    blocks = pre.chunk(3 if kind == "minlstm" else 2, dim=-1)
    if kind == "mingru":
        return {"z": torch.sigmoid(blocks[0]), "g": g(blocks[1])}
    difference = F.softplus(-blocks[0]) - F.softplus(-blocks[1])
    return {"f": torch.sigmoid(-difference), "i": torch.sigmoid(difference), "g": g(blocks[2])}


def check_mode(mode: object) -> str | None:
    if mode is not None and mode not in MODES:
        raise ValueError(f"mode: expected 'parallel' or 'sequential', got {mode!r}")
    return mode


class MinimalLayer(nn.Module):
    """The layer machinery of minGRU and minLSTM; a subclass only names its kind."""

    kind: str
    _trace = None  # the rnnkit.nn.trace.Trace recording this layer's steps, while one does

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        mode: str | None = None,
    ) -> None:
        super().__init__()
        check_layer_sizes(input_size, hidden_size, num_layers, dropout)
        for name, value in (("bias", bias), ("batch_first", batch_first), ("bidirectional", bidirectional)):
            if not isinstance(value, bool):
                raise ValueError(f"{name}: expected True or False, got {value!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, float(dropout), bidirectional
        self.mode = check_mode(mode)
        self.spec = CellSpec(self.kind)
        shapes = layer_parameter_shapes(self.spec, input_size, hidden_size, num_layers, bias, bidirectional)
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape, device=device, dtype=dtype)))
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def reset_parameters(self) -> None:
        """torch.nn's recurrent initialisation: every parameter U(-1/sqrt(H), 1/sqrt(H))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def forward(self, input, hx: Tensor | None = None):
        """input (T, B, I) ((B, T, I) with batch_first), (T, I) unbatched, or a PackedSequence; hx
        (L*D, B, H) or None (zeros). Returns (output (T, B, D*H) or packed, h_n (L*D, B, H))."""
        packed = isinstance(input, PackedSequence)
        lengths = sorted_indices = unsorted_indices = None
        if packed:
            sorted_indices, unsorted_indices = input.sorted_indices, input.unsorted_indices
            x, lengths = pad_packed_sequence(PackedSequence(input.data, input.batch_sizes))  # (T, B, I), sorted
        else:
            x = input
            if x.dim() not in (2, 3):
                raise ValueError(f"{type(self).__name__}: expected input to be 2D or 3D, got {x.dim()}D")
        batched = packed or x.dim() == 3
        if not batched:
            x, hx = x.unsqueeze(1), hx.unsqueeze(1) if hx is not None else None
        elif self.batch_first and not packed:
            x = x.transpose(0, 1)
        if x.shape[0] == 0:
            raise ValueError(f"{type(self).__name__}: expected a sequence of at least one step")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: input has {x.shape[-1]} features, expected {self.input_size}")
        batch = x.shape[1]
        expected = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if hx is None:
            hx = x.new_zeros(expected)
        else:
            if tuple(hx.shape) != expected:
                raise ValueError(f"{type(self).__name__}: hx has shape {tuple(hx.shape)}, expected {expected}")
            if sorted_indices is not None:
                hx = hx.index_select(1, sorted_indices)
        output, h_n = self.run_layers(x, lengths, hx)
        if self._trace is not None:
            self._trace.commit(unsorted_indices)
        if packed:
            output = pack_padded_sequence(output, lengths)
            output = PackedSequence(output.data, output.batch_sizes, sorted_indices, unsorted_indices)
            h_n = h_n.index_select(1, unsorted_indices) if unsorted_indices is not None else h_n
        elif not batched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, h_n

    def run_layers(self, x: Tensor, lengths: Tensor | None, hx: Tensor) -> tuple[Tensor, Tensor]:
        """x (T, B, I) time-major; lengths (B,) or None; hx (L*D, B, H)."""
        mask = None
        if lengths is not None:
            mask = (torch.arange(x.shape[0])[:, None] < lengths[None, :]).to(x.device)  # (T, B)
        mode = self.mode or ("parallel" if x.shape[0] > 1 else "sequential")
        step_tensors = self._trace is not None and self._trace.keep_graph  # gradients with respect to each h_t
        finals = []
        for layer in range(self.num_layers):
            outputs = []
            for reverse in (False, True)[: self.num_directions]:
                suffix = layer_suffix(layer, reverse)
                inputs = reverse_padded(x, lengths) if reverse else x
                pre = F.linear(inputs, getattr(self, "weight_ih" + suffix), getattr(self, "bias_ih" + suffix, None))
                # a sequence's padded steps come after its last real one, where nothing reads them
                h0, steps = hx[layer * self.num_directions + int(reverse)], [] if step_tensors else None
                if mode == "parallel" and not step_tensors:
                    h = scan_parallel(self.kind, pre, h0)  # (T, B, H)
                else:
                    h = scan_sequential(self.kind, pre, h0, steps)
                if self._trace is not None:
                    values = traced_values(self.kind, pre)
                    records = [
                        {**{k: v[t] for k, v in values.items()}, "h": steps[t] if steps else h[t]}
                        for t in range(h.shape[0])
                    ]
                    self._trace.add(self, suffix[1:], records, mask, lengths, reverse)
                finals.append(
                    h[-1]
                    if lengths is None
                    else h[(lengths - 1).to(h.device), torch.arange(h.shape[1], device=h.device)]
                )
                if mask is not None:
                    h = h * mask[..., None].to(h.dtype)  # padded steps output zeros
                outputs.append(reverse_padded(h, lengths) if reverse else h)
            x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        return x, torch.stack(finals)

    def extra_repr(self) -> str:
        parts = [f"{self.input_size}, {self.hidden_size}"]
        for name, default in (
            ("num_layers", 1),
            ("bias", True),
            ("batch_first", False),
            ("dropout", 0.0),
            ("bidirectional", False),
            ("mode", None),
        ):
            if getattr(self, name) != default:
                parts.append(f"{name}={getattr(self, name)!r}")
        return ", ".join(parts)


class MinGRU(MinimalLayer):
    """minGRU: h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ g(h̃_t), z_t = σ(W_z x_t + b_z), h̃_t = W_h x_t + b_h."""

    kind = "mingru"


class MinLSTM(MinimalLayer):
    """minLSTM: h_t = f'_t ⊙ h_{t−1} + i'_t ⊙ g(h̃_t), with f', i' the forget and input gates normalised
    to sum to 1."""

    kind = "minlstm"


class MinimalCell(nn.Module):
    """One step of minGRU or minLSTM: weight_ih (G*H, I), bias_ih (G*H,)."""

    kind: str

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        check_layer_sizes(input_size, hidden_size, 1, 0.0)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        for name, shape in parameter_shapes(CellSpec(self.kind), input_size, hidden_size, bias).items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape, device=device, dtype=dtype)))
        if not bias:
            self.bias_ih = None
        bound = 1.0 / math.sqrt(hidden_size)
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """input (B, I) or (I,); hx like it with H features, or None (zeros). Returns h (B, H) or (H,)."""
        if input.dim() not in (1, 2):
            raise ValueError(f"{type(self).__name__}: expected input to be 1D or 2D, got {input.dim()}D")
        h = hx if hx is not None else input.new_zeros(*input.shape[:-1], self.hidden_size)
        a, b = coefficients(self.kind, F.linear(input, self.weight_ih, self.bias_ih))
        return a * h + b

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class MinGRUCell(MinimalCell):
    kind = "mingru"


class MinLSTMCell(MinimalCell):
    kind = "minlstm"
