"""What a recurrent cell is, independent of any engine.

A `CellSpec` names the cell (rnn, lstm, gru), its variant (EQUATIONS.md, "Cells and layers") and from that derives the
parameter layout both engines share: which row blocks `weight_ih`/`weight_hh`/`bias_*` hold, in
which order, and which peephole blocks `weight_ch` holds. It imports nothing but the standard
library, so the NumPy engine can use it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

MINIMAL_KINDS = ("mingru", "minlstm")  # gates of x_t alone: a linear recurrence, computed by a scan
KINDS = ("rnn", "lstm", "gru", *MINIMAL_KINDS)
NONLINEARITIES = ("tanh", "relu")
RESETS = ("after", "before")
LSTM_GATE_LETTERS = "ifo"


@dataclass(frozen=True)
class CellSpec:
    kind: str
    nonlinearity: str = "tanh"  # rnn
    gates: str = "ifo"  # lstm: present gates, a subset of "ifo" in that order
    peephole: bool = False  # lstm
    coupled: bool = False  # lstm: i = 1 - f
    forget_bias: float = 0.0  # lstm: initial value of the forget-gate bias (0 keeps torch's init)
    reset: str = "after"  # gru
    reset_gate: bool = True  # gru

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: got {self.kind!r}, expected one of {', '.join(KINDS)}")
        if self.nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity: got {self.nonlinearity!r}, expected 'tanh' or 'relu'")
        _check_gates(self.gates)
        if self.coupled and not ("i" in self.gates and "f" in self.gates):
            raise ValueError(
                f"coupled: coupled=True (i = 1 - f) needs both 'i' and 'f' in gates, got gates={self.gates!r}"
            )
        if self.reset not in RESETS:
            raise ValueError(f"reset: got {self.reset!r}, expected 'after' or 'before'")
        for name in ("peephole", "coupled", "reset_gate"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: expected True or False, got {getattr(self, name)!r}")
        if isinstance(self.forget_bias, bool) or not isinstance(self.forget_bias, (int, float)):
            raise ValueError(f"forget_bias: expected a number, got {self.forget_bias!r}")
        if self.kind in MINIMAL_KINDS:
            plain = CellSpec("rnn")
            for name in ("nonlinearity", "gates", "peephole", "coupled", "forget_bias", "reset", "reset_gate"):
                if getattr(self, name) != getattr(plain, name):
                    raise ValueError(f"{name}: {self.kind} has no variants; leave {name} at {getattr(plain, name)!r}")

    @property
    def blocks(self) -> tuple[str, ...]:
        """Row blocks of weight_ih/weight_hh/bias_*, in torch's gate order."""
        if self.kind == "rnn":
            return ("h",)
        if self.kind == "mingru":
            return ("z", "h")
        if self.kind == "minlstm":
            return ("f", "i", "h")
        if self.kind == "gru":
            return (("r",) if self.reset_gate else ()) + ("z", "n")
        present = [g for g in "ifgo" if g == "g" or g in self.gates]
        if self.coupled:
            present.remove("i")
        return tuple(present)

    @property
    def peephole_blocks(self) -> tuple[str, ...]:
        """H-blocks of weight_ch: one per gate among i, f, o that has its own row block."""
        if self.kind != "lstm" or not self.peephole:
            return ()
        return tuple(g for g in LSTM_GATE_LETTERS if g in self.blocks)

    @property
    def has_cell_state(self) -> bool:
        return self.kind == "lstm"

    @property
    def is_minimal(self) -> bool:
        """minGRU or minLSTM: gates that read only x_t (EQUATIONS.md, "Minimal cells"); no weight_hh, no bias_hh."""
        return self.kind in MINIMAL_KINDS

    @property
    def is_standard(self) -> bool:
        """True when the forward pass is exactly torch.nn's (so its fused kernels apply)."""
        if self.kind == "lstm":
            return self.gates == "ifo" and not self.peephole and not self.coupled
        if self.kind == "gru":
            return self.reset == "after" and self.reset_gate
        return self.kind == "rnn"

    def keywords(self) -> dict:
        """The variant as the keyword arguments of a layer constructor of either engine."""
        if self.kind == "rnn":
            return {"nonlinearity": self.nonlinearity}
        if self.is_minimal:
            return {}
        if self.kind == "lstm":
            return {
                "peephole": self.peephole,
                "gates": self.gates,
                "coupled": self.coupled,
                "forget_bias": self.forget_bias,
            }
        return {"reset": self.reset, "reset_gate": self.reset_gate}

    def changed_keywords(self) -> dict:
        """The keywords whose values differ from the plain cell's (what a repr needs to show)."""
        plain = CellSpec(self.kind).keywords()
        return {name: value for name, value in self.keywords().items() if value != plain[name]}

    @property
    def variant_name(self) -> str:
        """A short human label, e.g. 'lstm gates=if peephole'."""
        parts = [self.kind]
        if self.kind == "rnn":
            parts.append(self.nonlinearity)
        if self.kind == "lstm":
            if self.gates != "ifo":
                parts.append(f"gates={self.gates or '-'}")
            if self.peephole:
                parts.append("peephole")
            if self.coupled:
                parts.append("coupled")
            if self.forget_bias:
                parts.append(f"forget_bias={self.forget_bias:g}")
        if self.kind == "gru":
            if self.reset != "after":
                parts.append(f"reset={self.reset}")
            if not self.reset_gate:
                parts.append("no-reset-gate")
        return " ".join(parts)


def _check_gates(gates: object) -> None:
    if not isinstance(gates, str):
        raise ValueError(f"gates: expected a string of letters from 'ifo', got {gates!r}")
    unknown = sorted(set(gates) - set(LSTM_GATE_LETTERS))
    if unknown:
        raise ValueError(
            f"gates: unknown gate letter(s) {''.join(unknown)!r} in {gates!r}; "
            "accepted: any subset of 'i', 'f', 'o' in that order ('' is gateless)"
        )
    ordered = "".join(g for g in LSTM_GATE_LETTERS if g in gates)
    if gates != ordered:
        raise ValueError(f"gates: got {gates!r}; write each of 'i', 'f', 'o' at most once, in that order ({ordered!r})")


def layer_suffix(layer: int, reverse: bool) -> str:
    """torch.nn's parameter-name suffix: '_l0', '_l1_reverse', ..."""
    return f"_l{layer}" + ("_reverse" if reverse else "")


def parameter_shapes(
    spec: CellSpec, input_size: int, hidden_size: int, bias: bool = True, suffix: str = ""
) -> dict[str, tuple[int, ...]]:
    """Names and shapes of one cell's parameters (a layer passes `layer_suffix(...)`)."""
    rows = len(spec.blocks) * hidden_size
    if spec.is_minimal:
        return {f"weight_ih{suffix}": (rows, input_size), **({f"bias_ih{suffix}": (rows,)} if bias else {})}
    shapes = {f"weight_ih{suffix}": (rows, input_size), f"weight_hh{suffix}": (rows, hidden_size)}
    if bias:
        shapes[f"bias_ih{suffix}"] = (rows,)
        shapes[f"bias_hh{suffix}"] = (rows,)
    if spec.peephole_blocks:
        shapes[f"weight_ch{suffix}"] = (len(spec.peephole_blocks) * hidden_size,)
    return shapes


def layer_parameter_groups(
    spec: CellSpec,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bias: bool = True,
    bidirectional: bool = False,
) -> list[dict[str, tuple[int, ...]]]:
    """Names and shapes of a stacked (bi)directional layer's parameters, one dict per cell
    (layer-major, direction-minor), in torch's order."""
    directions = 2 if bidirectional else 1
    groups = []
    for layer in range(num_layers):
        layer_input = input_size if layer == 0 else hidden_size * directions
        for direction in range(directions):
            suffix = layer_suffix(layer, direction == 1)
            groups.append(parameter_shapes(spec, layer_input, hidden_size, bias, suffix))
    return groups


def layer_parameter_shapes(*args, **kwargs) -> dict[str, tuple[int, ...]]:
    """Names and shapes of a stacked (bi)directional layer's parameters, in torch's order
    (the arguments of `layer_parameter_groups`)."""
    return {name: shape for group in layer_parameter_groups(*args, **kwargs) for name, shape in group.items()}


def check_layer_sizes(input_size: object, hidden_size: object, num_layers: object, dropout: object) -> None:
    """Shared argument checks of every layer constructor (both engines)."""
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
        raise ValueError(f"dropout: expected a probability in [0, 1], got {dropout!r}")


# One of each variant of EQUATIONS.md ("Cells and layers"): what `rnnkit gradcheck` and the tests of both engines run.
EVERY_VARIANT = (
    CellSpec("rnn", nonlinearity="tanh"),
    CellSpec("rnn", nonlinearity="relu"),
    CellSpec("lstm"),
    CellSpec("lstm", peephole=True),
    *(CellSpec("lstm", gates=gates) for gates in ("", "i", "f", "o", "if", "io", "fo")),
    CellSpec("lstm", gates="io", peephole=True),
    CellSpec("lstm", gates="fo", peephole=True),
    CellSpec("lstm", coupled=True),
    CellSpec("lstm", coupled=True, peephole=True),
    CellSpec("lstm", forget_bias=1.0),
    CellSpec("gru"),
    CellSpec("gru", reset="before"),
    CellSpec("gru", reset_gate=False),
    CellSpec("gru", reset="before", reset_gate=False),
)
MINIMAL = (CellSpec("mingru"), CellSpec("minlstm"))  # the scan cells, run beside EVERY_VARIANT where they apply
