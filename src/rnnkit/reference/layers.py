"""RNN, LSTM and GRU layers of the NumPy engine: stacked, optionally bidirectional, with BPTT.

Dimension letters: T time, B batch, I input features, H hidden units, L layers, D directions.

Parameter names and shapes are torch.nn's, so a torch state_dict (as NumPy arrays) loads with
strict=True. `forward` keeps a cache; `backward` uses the cache of the last forward. This engine is a
reference for evaluation mode, so it has no dropout and no batch_first: arrays are time-major.
"""

from __future__ import annotations

import numpy as np

from rnnkit.reference.sequence import direction_backward, direction_forward
from rnnkit.spec import CellSpec, check_layer_sizes, layer_parameter_shapes, layer_suffix

DTYPES = (np.float32, np.float64)


class RecurrentLayer:
    def __init__(
        self,
        spec: CellSpec,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        bidirectional: bool = False,
        dtype=np.float64,
        seed: int | None = None,
    ):
        check_layer_sizes(input_size, hidden_size, num_layers, 0.0)
        for name, value in (("bias", bias), ("bidirectional", bidirectional)):
            if not isinstance(value, bool):
                raise ValueError(f"{name}: expected True or False, got {value!r}")
        if np.dtype(dtype) not in [np.dtype(d) for d in DTYPES]:
            raise ValueError(f"dtype: expected numpy.float32 or numpy.float64, got {dtype!r}")
        self.spec = spec
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.bidirectional = bias, bidirectional
        self.directions = 2 if bidirectional else 1
        self.dtype = np.dtype(dtype)
        self._shapes = layer_parameter_shapes(spec, input_size, hidden_size, num_layers, bias, bidirectional)
        self._parameters = self._initial_parameters(np.random.default_rng(seed))
        self._cache = None

    def _initial_parameters(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        # torch.nn's initialisation: every parameter uniform in ±1/sqrt(H).
        bound = 1.0 / np.sqrt(self.hidden_size)
        parameters = {
            name: rng.uniform(-bound, bound, shape).astype(self.dtype) for name, shape in self._shapes.items()
        }
        if self.spec.forget_bias and self.bias and "f" in self.spec.blocks:
            # The forget gate's total bias b_if + b_hf starts at forget_bias, as in rnnkit.nn.
            first = self.spec.blocks.index("f") * self.hidden_size
            rows = slice(first, first + self.hidden_size)
            for name in parameters:
                if name.startswith("bias_ih"):
                    parameters[name][rows] = self.spec.forget_bias
                elif name.startswith("bias_hh"):
                    parameters[name][rows] = 0.0
        return parameters

    # Parameters ----------------------------------------------------------------------------------

    def __getattr__(self, name: str) -> np.ndarray:
        parameters = self.__dict__.get("_parameters", {})
        if name in parameters:
            return parameters[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def named_parameters(self):
        """(name, array) pairs of the live parameters: changing an array in place changes the layer."""
        return iter(self._parameters.items())

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: value.copy() for name, value in self._parameters.items()}

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> None:
        """Copy arrays into the parameters; misshapen entries are always errors, missing and
        unexpected ones only when strict (as torch.nn)."""
        if strict:
            missing = [name for name in self._shapes if name not in state_dict]
            unexpected = [name for name in state_dict if name not in self._shapes]
            if missing or unexpected:
                raise ValueError(
                    f"state_dict: missing keys {missing}, unexpected keys {unexpected}; "
                    f"expected exactly {list(self._shapes)}"
                )
        for name, value in state_dict.items():
            if name not in self._shapes:
                continue
            value = np.asarray(value)
            if value.shape != self._shapes[name]:
                raise ValueError(f"state_dict: {name} has shape {value.shape}, expected {self._shapes[name]}")
        for name, value in state_dict.items():
            if name in self._shapes:
                self._parameters[name] = np.array(value, dtype=self.dtype)

    def _cell_parameters(self, layer: int, direction: int) -> dict[str, np.ndarray]:
        suffix = layer_suffix(layer, direction == 1)
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_ch")
        return {name: self._parameters[name + suffix] for name in names if name + suffix in self._parameters}

    # Forward and backward --------------------------------------------------------------------------

    def forward(self, x, hx=None, lengths=None):
        x = self._check_input(x)  # (T, B, I)
        steps, batch = x.shape[:2]
        lengths = self._check_lengths(lengths, steps, batch)  # (B,)
        initial = self._check_state("hx", hx, batch)  # each (L*D, B, H)
        finals = tuple(np.empty_like(s) for s in initial)  # each (L*D, B, H)
        caches = []
        layer_input = x  # (T, B, I), then (T, B, D*H)
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.directions):
                index = layer * self.directions + direction
                state = tuple(s[index] for s in initial)  # each (B, H)
                output, final, cache = direction_forward(
                    self.spec, self._cell_parameters(layer, direction), layer_input, state, lengths, direction == 1
                )
                outputs.append(output)
                for f, s in zip(finals, final):
                    f[index] = s
                caches.append(cache)
            layer_input = np.concatenate(outputs, axis=2)  # (T, B, D*H)
        self._cache = (caches, layer_input.shape, batch)
        return layer_input, self._pack_state(finals)

    __call__ = forward

    def backward(self, d_output, d_state=None):
        """Gradients given d_output (T, B, D*H) and the gradient flowing into the final state.

        Returns (d_input (T, B, I), d_hx in the structure of hx, grads by parameter name).
        """
        if self._cache is None:
            raise RuntimeError("backward: call forward first; backward uses the cache of the last forward")
        caches, output_shape, batch = self._cache
        d_output = np.asarray(d_output, dtype=self.dtype)
        if d_output.shape != output_shape:
            raise ValueError(f"d_output: expected the output's shape {output_shape}, got {d_output.shape}")
        d_finals = self._check_state("d_state", d_state, batch)  # each (L*D, B, H)
        d_initial = tuple(np.zeros_like(d) for d in d_finals)  # each (L*D, B, H)
        grads: dict[str, np.ndarray] = {}
        d_layer_output = d_output  # (T, B, D*H)
        for layer in reversed(range(self.num_layers)):
            d_layer_input = None
            for direction in range(self.directions):
                index = layer * self.directions + direction
                columns = slice(direction * self.hidden_size, (direction + 1) * self.hidden_size)
                d_x, d_state0, cell_grads = direction_backward(
                    d_layer_output[:, :, columns], tuple(d[index] for d in d_finals), caches[index]
                )
                d_layer_input = d_x if d_layer_input is None else d_layer_input + d_x  # (T, B, ·)
                for d, d0 in zip(d_initial, d_state0):
                    d[index] = d0
                suffix = layer_suffix(layer, direction == 1)
                grads.update({name + suffix: value for name, value in cell_grads.items()})
            d_layer_output = d_layer_input
        return d_layer_output, self._pack_state(d_initial), {name: grads[name] for name in self._shapes}

    # Checks --------------------------------------------------------------------------------------

    def _pack_state(self, state: tuple[np.ndarray, ...]):
        return state if self.spec.has_cell_state else state[0]

    def _check_input(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[2] != self.input_size or 0 in x.shape:
            raise ValueError(
                f"x: expected a time-major array of shape (T, B, input_size={self.input_size}) with T, B >= 1, "
                f"got shape {x.shape}"
            )
        return x.astype(self.dtype, copy=False)

    def _check_lengths(self, lengths, steps: int, batch: int) -> np.ndarray:
        if lengths is None:
            return np.full(batch, steps)
        given = np.asarray(lengths)
        if (
            given.shape != (batch,)
            or not np.issubdtype(given.dtype, np.integer)
            or given.min() < 1
            or given.max() > steps
        ):
            raise ValueError(
                f"lengths: expected {batch} integers (one per sequence) in 1..{steps} (T), got {given.tolist()}"
            )
        return given

    def _check_state(self, argument: str, state, batch: int) -> tuple[np.ndarray, ...]:
        """hx or d_state: None (zeros), an array, or for LSTM a pair whose entries may be None."""
        shape = (self.num_layers * self.directions, batch, self.hidden_size)
        names = ("h", "c") if self.spec.has_cell_state else ("h",)
        accepted = f"an array of shape {shape} (num_layers * directions, B, H)"
        if self.spec.has_cell_state:
            accepted = f"a pair (h, c) of arrays of shape {shape} (num_layers * directions, B, H)"
        if state is None:
            state = (None,) * len(names)
        elif not self.spec.has_cell_state:
            state = (state,)
        elif not isinstance(state, (tuple, list)) or len(state) != 2:
            raise ValueError(f"{argument}: expected {accepted}, got {type(state).__name__}")
        checked = []
        for name, value in zip(names, state):
            if value is None:
                checked.append(np.zeros(shape, dtype=self.dtype))
                continue
            value = np.asarray(value)
            if value.shape != shape:
                raise ValueError(f"{argument}: expected {accepted}, got {name} of shape {value.shape}")
            checked.append(value.astype(self.dtype, copy=False))
        return tuple(checked)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"bias={self.bias}, bidirectional={self.bidirectional}, dtype={self.dtype.name}, "
            f"variant={self.spec.variant_name!r})"
        )


class RNN(RecurrentLayer):
    """h_t = φ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), φ = tanh or relu."""

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        bidirectional=False,
        dtype=np.float64,
        *,
        nonlinearity="tanh",
        seed=None,
    ):
        super().__init__(
            CellSpec("rnn", nonlinearity=nonlinearity),
            input_size,
            hidden_size,
            num_layers,
            bias,
            bidirectional,
            dtype,
            seed,
        )


class LSTM(RecurrentLayer):
    """LSTM with the variants of EQUATIONS.md ("Cells and layers"): peephole, gates, coupled, forget_bias."""

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        bidirectional=False,
        dtype=np.float64,
        *,
        peephole=False,
        gates="ifo",
        coupled=False,
        forget_bias=0.0,
        seed=None,
    ):
        spec = CellSpec("lstm", gates=gates, peephole=peephole, coupled=coupled, forget_bias=forget_bias)
        super().__init__(spec, input_size, hidden_size, num_layers, bias, bidirectional, dtype, seed)


class GRU(RecurrentLayer):
    """GRU with the variants of EQUATIONS.md ("Cells and layers"): reset="after"|"before", reset_gate."""

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        bidirectional=False,
        dtype=np.float64,
        *,
        reset="after",
        reset_gate=True,
        seed=None,
    ):
        spec = CellSpec("gru", reset=reset, reset_gate=reset_gate)
        super().__init__(spec, input_size, hidden_size, num_layers, bias, bidirectional, dtype, seed)


class MinGRU(RecurrentLayer):
    """minGRU (EQUATIONS.md, "Minimal cells"): h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ g(h̃_t), gates of x_t alone.
    This engine runs it one step at a time, with hand-written BPTT; rnnkit.nn.MinGRU also scans."""

    def __init__(
        self, input_size, hidden_size, num_layers=1, bias=True, bidirectional=False, dtype=np.float64, *, seed=None
    ):
        super().__init__(CellSpec("mingru"), input_size, hidden_size, num_layers, bias, bidirectional, dtype, seed)


class MinLSTM(RecurrentLayer):
    """minLSTM (EQUATIONS.md, "Minimal cells"): h_t = f'_t ⊙ h_{t−1} + i'_t ⊙ g(h̃_t), f' + i' = 1."""

    def __init__(
        self, input_size, hidden_size, num_layers=1, bias=True, bidirectional=False, dtype=np.float64, *, seed=None
    ):
        super().__init__(CellSpec("minlstm"), input_size, hidden_size, num_layers, bias, bidirectional, dtype, seed)
