"""One time step of each cell, written as EQUATIONS.md ("Cells and layers") writes it.

Dimension letters: B batch, H hidden size, G number of row blocks of the cell (CellSpec.blocks).

Every step takes `xw`, the input projection `W_ih x_t + b_ih` of all row blocks, which a layer
computes for the whole sequence in one matrix product before its time loop (the only part of a
recurrent layer that is not sequential). A gate the variant removes is the constant 1: its value
here is `None` and the products it would scale are skipped.

`record`, when a dict is given (rnnkit.nn.trace does), receives the step's named values: the gates
that exist (i, f, g, o; r, z, n) and the states (c, h), each (B, H). The return value is the same
either way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.spec import CellSpec


def split_blocks(spec: CellSpec, rows: Tensor) -> dict[str, Tensor]:
    """Name the row blocks of a (B, G*H) tensor: {'i': (B, H), 'f': (B, H), ...}."""
    return dict(zip(spec.blocks, rows.tensor_split(len(spec.blocks), dim=-1)))  # (also when H = 0)


def rnn_step(
    spec: CellSpec, xw: Tensor, h_prev: Tensor, weight_hh: Tensor, bias_hh: Tensor | None, record: dict | None = None
) -> Tensor:
    pre = xw + F.linear(h_prev, weight_hh, bias_hh)  # (B, H)
    h = torch.tanh(pre) if spec.nonlinearity == "tanh" else torch.relu(pre)  # (B, H)
    if record is not None:
        record["h"] = h
    return h


def lstm_step(
    spec: CellSpec,
    xw: Tensor,
    h_prev: Tensor,
    c_prev: Tensor,
    weight_hh: Tensor,
    bias_hh: Tensor | None,
    weight_ch: Tensor | None,
    record: dict | None = None,
) -> tuple[Tensor, Tensor]:
    pre = split_blocks(spec, xw + F.linear(h_prev, weight_hh, bias_hh))  # each (B, H)
    peep = (
        dict(zip(spec.peephole_blocks, weight_ch.tensor_split(len(spec.peephole_blocks))))
        if weight_ch is not None
        else {}
    )

    def gate(letter: str, c: Tensor) -> Tensor | None:
        if letter not in pre:
            return None  # removed gate: the constant 1
        if letter in peep:
            return torch.sigmoid(pre[letter] + peep[letter] * c)  # (B, H)
        return torch.sigmoid(pre[letter])  # (B, H)

    f = gate("f", c_prev)
    i = 1 - f if spec.coupled else gate("i", c_prev)
    g = torch.tanh(pre["g"])  # (B, H)
    c = (c_prev if f is None else f * c_prev) + (g if i is None else i * g)  # (B, H)
    o = gate("o", c)
    h = torch.tanh(c) if o is None else o * torch.tanh(c)  # (B, H)
    if record is not None:
        record.update({name: value for name, value in zip("ifgoch", (i, f, g, o, c, h)) if value is not None})
    return h, c


def gru_step(
    spec: CellSpec, xw: Tensor, h_prev: Tensor, weight_hh: Tensor, bias_hh: Tensor | None, record: dict | None = None
) -> Tensor:
    x = split_blocks(spec, xw)  # each (B, H)
    if spec.reset == "before" and spec.reset_gate:
        # n reads r ⊙ h_prev, so its recurrent product must wait for r.
        rz = 2 * h_prev.shape[-1]  # rows of the r and z blocks
        b_rz, b_n = (None, None) if bias_hh is None else (bias_hh[:rz], bias_hh[rz:])
        hw_r, hw_z = F.linear(h_prev, weight_hh[:rz], b_rz).tensor_split(2, dim=-1)  # each (B, H)
        r = torch.sigmoid(x["r"] + hw_r)  # (B, H)
        z = torch.sigmoid(x["z"] + hw_z)  # (B, H)
        n = torch.tanh(x["n"] + F.linear(r * h_prev, weight_hh[rz:], b_n))  # (B, H)
    else:
        hw = split_blocks(spec, F.linear(h_prev, weight_hh, bias_hh))  # each (B, H)
        z = torch.sigmoid(x["z"] + hw["z"])  # (B, H)
        r = None
        if spec.reset_gate:  # reset="after": r scales the whole recurrent term, bias included
            r = torch.sigmoid(x["r"] + hw["r"])  # (B, H)
            n = torch.tanh(x["n"] + r * hw["n"])  # (B, H)
        else:
            n = torch.tanh(x["n"] + hw["n"])  # (B, H)
    h = (1 - z) * n + z * h_prev  # (B, H)
    if record is not None:
        record.update({name: value for name, value in zip("rznh", (r, z, n, h)) if value is not None})
    return h


CELL_WEIGHT_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_ch")


def cell_parameters(weights: dict[str, Tensor], suffix: str) -> dict[str, Tensor | None]:
    """One cell's tensors of a layer by their suffix-free names (absent ones, e.g. biases, are None)."""
    return {name: weights.get(name + suffix) for name in CELL_WEIGHT_NAMES}


def cell_step(
    spec: CellSpec, xw: Tensor, state: tuple[Tensor, ...], p: dict[str, Tensor | None], record: dict | None = None
) -> tuple[Tensor, ...]:
    """One step of any cell from its input projection xw (B, G*H); the state as a tuple, (h,) or (h, c)."""
    if spec.kind == "lstm":
        return lstm_step(spec, xw, state[0], state[1], p["weight_hh"], p["bias_hh"], p["weight_ch"], record)
    step = rnn_step if spec.kind == "rnn" else gru_step
    return (step(spec, xw, state[0], p["weight_hh"], p["bias_hh"], record),)
