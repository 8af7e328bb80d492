"""One time step of each cell, forward and hand-written backward, in NumPy (EQUATIONS.md,
"Backpropagation through time").

Dimension letters: B batch, I input features, H hidden units.

`params` maps torch's names without the layer suffix (weight_ih, weight_hh, bias_ih, bias_hh,
weight_ch) to arrays in torch's layout; the bias entries are absent for bias=False and weight_ch
unless the spec has peepholes. Every `*_forward` returns (outputs, cache); its `*_backward` takes
the gradients of those outputs and the cache, walks the same lines in reverse and returns the
gradients of the inputs and a dict of parameter gradients with the keys of `params`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rnnkit.spec import CellSpec


def sigmoid(a: np.ndarray) -> np.ndarray:
    # The tanh form never overflows, unlike 1 / (1 + exp(-a)) for large negative a.
    return 0.5 * (1.0 + np.tanh(0.5 * a))


@dataclass
class Blocks:
    """A cell's parameters cut into their row blocks: W_i["f"] is W_if, b_h["n"] is b_hn, p["o"] is p_o."""

    W_i: dict[str, np.ndarray]  # each (H, I)
    W_h: dict[str, np.ndarray]  # each (H, H)
    b_i: dict[str, np.ndarray]  # each (H,); zeros when the layer has no bias
    b_h: dict[str, np.ndarray]  # each (H,)
    p: dict[str, np.ndarray]  # each (H,); only the peephole blocks
    has_bias: bool


@dataclass
class BlockGrads:
    """Gradients per row block, joined back into torch's layout by `join`."""

    W_i: dict[str, np.ndarray] = field(default_factory=dict)
    W_h: dict[str, np.ndarray] = field(default_factory=dict)
    b_i: dict[str, np.ndarray] = field(default_factory=dict)
    b_h: dict[str, np.ndarray] = field(default_factory=dict)
    p: dict[str, np.ndarray] = field(default_factory=dict)

    def join(self, spec: CellSpec, has_bias: bool) -> dict[str, np.ndarray]:
        grads = {
            "weight_ih": np.concatenate([self.W_i[k] for k in spec.blocks]),  # (GH, I)
            "weight_hh": np.concatenate([self.W_h[k] for k in spec.blocks]),  # (GH, H)
        }
        if has_bias:
            grads["bias_ih"] = np.concatenate([self.b_i[k] for k in spec.blocks])  # (GH,)
            grads["bias_hh"] = np.concatenate([self.b_h[k] for k in spec.blocks])  # (GH,)
        if spec.peephole_blocks:
            grads["weight_ch"] = np.concatenate([self.p[k] for k in spec.peephole_blocks])  # (PH,)
        return grads


def split_blocks(spec: CellSpec, params: dict[str, np.ndarray]) -> Blocks:
    hidden_size = params["weight_hh"].shape[1]

    def cut(array: np.ndarray, letters: tuple[str, ...]) -> dict[str, np.ndarray]:
        return {k: array[j * hidden_size : (j + 1) * hidden_size] for j, k in enumerate(letters)}

    has_bias = "bias_ih" in params
    zeros = np.zeros(hidden_size, dtype=params["weight_hh"].dtype)  # (H,)
    no_bias = {k: zeros for k in spec.blocks}
    return Blocks(
        W_i=cut(params["weight_ih"], spec.blocks),
        W_h=cut(params["weight_hh"], spec.blocks),
        b_i=cut(params["bias_ih"], spec.blocks) if has_bias else no_bias,
        b_h=cut(params["bias_hh"], spec.blocks) if has_bias else no_bias,
        p=cut(params["weight_ch"], spec.peephole_blocks) if spec.peephole_blocks else {},
        has_bias=has_bias,
    )


def input_part(P: Blocks, k: str, x: np.ndarray) -> np.ndarray:
    return x @ P.W_i[k].T + P.b_i[k]  # (B, H)  W_ik x_t + b_ik


def hidden_part(P: Blocks, k: str, h: np.ndarray) -> np.ndarray:
    return h @ P.W_h[k].T + P.b_h[k]  # (B, H)  W_hk h + b_hk


def block_backward(
    P: Blocks, k: str, x: np.ndarray, h: np.ndarray, da_x: np.ndarray, da_h: np.ndarray, grads: BlockGrads
) -> tuple[np.ndarray, np.ndarray]:
    """Backward of input_part(P, k, x) and hidden_part(P, k, h): records block k's gradients, returns (dx, dh)."""
    grads.W_i[k] = da_x.T @ x  # (H, I)
    grads.W_h[k] = da_h.T @ h  # (H, H)
    grads.b_i[k] = da_x.sum(axis=0)  # (H,)
    grads.b_h[k] = da_h.sum(axis=0)  # (H,)
    return da_x @ P.W_i[k], da_h @ P.W_h[k]  # (B, I), (B, H)


# Elman RNN ---------------------------------------------------------------------------------------


def rnn_step_forward(spec: CellSpec, params: dict, x: np.ndarray, h_prev: np.ndarray):
    P = split_blocks(spec, params)
    a = input_part(P, "h", x) + hidden_part(P, "h", h_prev)  # (B, H)
    h = np.tanh(a) if spec.nonlinearity == "tanh" else np.maximum(a, 0.0)  # (B, H)
    return h, (spec, P, x, h_prev, h)


def rnn_step_backward(dh: np.ndarray, cache):
    spec, P, x, h_prev, h = cache
    da = dh * (1.0 - h**2) if spec.nonlinearity == "tanh" else dh * (h > 0)  # (B, H)
    grads = BlockGrads()
    dx, dh_prev = block_backward(P, "h", x, h_prev, da, da, grads)
    return dx, dh_prev, grads.join(spec, P.has_bias)


# LSTM --------------------------------------------------------------------------------------------


def lstm_step_forward(spec: CellSpec, params: dict, x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray):
    P = split_blocks(spec, params)

    def pre(k: str, c: np.ndarray) -> np.ndarray:  # a gate's argument, with its peephole if any
        peephole = P.p[k] * c if k in P.p else 0.0
        return input_part(P, k, x) + hidden_part(P, k, h_prev) + peephole  # (B, H)

    one = np.ones_like(c_prev)  # (B, H)  a removed gate is the constant 1
    f = sigmoid(pre("f", c_prev)) if "f" in spec.blocks else one  # (B, H)
    if spec.coupled:
        i = 1.0 - f  # (B, H)
    else:
        i = sigmoid(pre("i", c_prev)) if "i" in spec.blocks else one  # (B, H)
    g = np.tanh(pre("g", c_prev))  # (B, H)  g has no peephole, so c_prev is unused
    c = f * c_prev + i * g  # (B, H)
    o = sigmoid(pre("o", c)) if "o" in spec.blocks else one  # (B, H)
    tanh_c = np.tanh(c)  # (B, H)
    h = o * tanh_c  # (B, H)
    return (h, c), (spec, P, x, h_prev, c_prev, i, f, g, c, o, tanh_c)


def lstm_step_backward(dh: np.ndarray, dc: np.ndarray, cache):
    spec, P, x, h_prev, c_prev, i, f, g, c, o, tanh_c = cache
    da = {}  # gradient of each gate's argument, (B, H)
    dp = {}  # gradient of each peephole block, (H,)
    do = dh * tanh_c  # (B, H)
    dc = dc + dh * o * (1.0 - tanh_c**2)  # (B, H)
    if "o" in spec.blocks:
        da["o"] = do * o * (1.0 - o)  # (B, H)
        if "o" in P.p:
            dp["o"] = (da["o"] * c).sum(axis=0)  # (H,)
            dc = dc + da["o"] * P.p["o"]  # (B, H)
    df = dc * c_prev  # (B, H)
    di = dc * g  # (B, H)
    dg = dc * i  # (B, H)
    dc_prev = dc * f  # (B, H)
    da["g"] = dg * (1.0 - g**2)  # (B, H)
    if spec.coupled:
        df = df - di  # (B, H)  i = 1 - f
    for k, gate, dgate in (("i", i, di), ("f", f, df)):
        if k in spec.blocks:
            da[k] = dgate * gate * (1.0 - gate)  # (B, H)
            if k in P.p:
                dp[k] = (da[k] * c_prev).sum(axis=0)  # (H,)
                dc_prev = dc_prev + da[k] * P.p[k]  # (B, H)
    grads = BlockGrads(p=dp)
    dx = np.zeros_like(x)  # (B, I)
    dh_prev = np.zeros_like(h_prev)  # (B, H)
    for k in spec.blocks:
        dx_k, dh_k = block_backward(P, k, x, h_prev, da[k], da[k], grads)
        dx += dx_k
        dh_prev += dh_k
    return dx, dh_prev, dc_prev, grads.join(spec, P.has_bias)


# GRU ---------------------------------------------------------------------------------------------


def gru_step_forward(spec: CellSpec, params: dict, x: np.ndarray, h_prev: np.ndarray):
    P = split_blocks(spec, params)
    if spec.reset_gate:
        r = sigmoid(input_part(P, "r", x) + hidden_part(P, "r", h_prev))  # (B, H)
    else:
        r = np.ones_like(h_prev)  # (B, H)
    z = sigmoid(input_part(P, "z", x) + hidden_part(P, "z", h_prev))  # (B, H)
    if spec.reset == "after":
        n_h = hidden_part(P, "n", h_prev)  # (B, H)  W_hn h_{t-1} + b_hn
        n = np.tanh(input_part(P, "n", x) + r * n_h)  # (B, H)
    else:
        n_h = hidden_part(P, "n", r * h_prev)  # (B, H)  W_hn (r ⊙ h_{t-1}) + b_hn
        n = np.tanh(input_part(P, "n", x) + n_h)  # (B, H)
    h = (1.0 - z) * n + z * h_prev  # (B, H)
    return h, (spec, P, x, h_prev, r, z, n_h, n)


def gru_step_backward(dh: np.ndarray, cache):
    spec, P, x, h_prev, r, z, n_h, n = cache
    grads = BlockGrads()
    dn = dh * (1.0 - z)  # (B, H)
    dz = dh * (h_prev - n)  # (B, H)
    dh_prev = dh * z  # (B, H)
    da_n = dn * (1.0 - n**2)  # (B, H)
    if spec.reset == "after":
        dr = da_n * n_h  # (B, H)
        dx, dh_n = block_backward(P, "n", x, h_prev, da_n, da_n * r, grads)
        dh_prev = dh_prev + dh_n  # (B, H)
    else:
        dx, drh = block_backward(P, "n", x, r * h_prev, da_n, da_n, grads)
        dr = drh * h_prev  # (B, H)
        dh_prev = dh_prev + drh * r  # (B, H)
    da = {"z": dz * z * (1.0 - z)}  # (B, H)
    if spec.reset_gate:
        da["r"] = dr * r * (1.0 - r)  # (B, H)
    for k, da_k in da.items():
        dx_k, dh_k = block_backward(P, k, x, h_prev, da_k, da_k, grads)
        dx = dx + dx_k  # (B, I)
        dh_prev = dh_prev + dh_k  # (B, H)
    return dx, dh_prev, grads.join(spec, P.has_bias)


# minGRU and minLSTM ------------------------------------------------------------------------------


def softplus(a: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, a)


def g(a: np.ndarray) -> np.ndarray:
    """The positive candidate: a + 0.5 for a ≥ 0, σ(a) below."""
    return np.where(a >= 0, a + 0.5, sigmoid(np.minimum(a, 0.0)))


def g_derivative(a: np.ndarray) -> np.ndarray:
    s = sigmoid(np.minimum(a, 0.0))
    return np.where(a >= 0, 1.0, s * (1.0 - s))


def minimal_step_forward(spec: CellSpec, params: dict, x: np.ndarray, h_prev: np.ndarray):
    """h_t = a_t ⊙ h_{t-1} + b_t, with a_t and b_t from x_t alone (EQUATIONS.md, "Minimal cells")."""
    pre = x @ params["weight_ih"].T + (params["bias_ih"] if "bias_ih" in params else 0.0)  # (B, G*H)
    blocks = np.split(pre, len(spec.blocks), axis=1)  # each (B, H)
    candidate = g(blocks[-1])  # (B, H)
    if spec.kind == "mingru":
        z = sigmoid(blocks[0])  # (B, H)
        a, b, gates = 1.0 - z, z * candidate, (z,)
    else:
        f, i = sigmoid(blocks[0]), sigmoid(blocks[1])  # (B, H)
        d = softplus(-blocks[0]) - softplus(-blocks[1])  # (B, H)  log(i / f), finite where f + i underflows
        a, share = sigmoid(-d), sigmoid(d)  # (B, H)  f' = f / (f + i) and i' = i / (f + i)
        b, gates = share * candidate, (f, i, a, share)
    h = a * h_prev + b  # (B, H)
    return h, (spec, params, x, h_prev, blocks[-1], candidate, a, gates)


def minimal_step_backward(dh: np.ndarray, cache):
    spec, params, x, h_prev, pre_candidate, candidate, a, gates = cache
    da, db = dh * h_prev, dh  # (B, H)
    dh_prev = dh * a  # (B, H)
    if spec.kind == "mingru":
        (z,) = gates
        dz = -da + db * candidate  # a = 1 - z, b = z g
        d_candidate = db * z
        d_pre = [dz * z * (1.0 - z)]
    else:
        f, i, forget, share = gates
        d_candidate = db * share  # b = i' g
        dd = (db * candidate - da) * forget * share  # f' = σ(-d), i' = σ(d)
        d_pre = [-dd * (1.0 - f), dd * (1.0 - i)]  # d = softplus(-k_f) - softplus(-k_i)
    d_pre = np.concatenate(d_pre + [d_candidate * g_derivative(pre_candidate)], axis=1)  # (B, G*H)
    grads = {"weight_ih": d_pre.T @ x}  # (G*H, I)
    if "bias_ih" in params:
        grads["bias_ih"] = d_pre.sum(axis=0)  # (G*H,)
    return d_pre @ params["weight_ih"], dh_prev, grads
