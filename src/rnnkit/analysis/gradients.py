"""Gradient flow through time in rnnkit.nn layers, measured with autograd on the layer's own equations.

Dimension letters: T time, B batch, I input size, H hidden size.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from rnnkit.nn.layers import RecurrentLayer
from rnnkit.nn.steps import cell_parameters, cell_step
from rnnkit.nn.trace import trace


def check_layer(layer) -> RecurrentLayer:
    if not isinstance(layer, RecurrentLayer):
        raise ValueError(f"expected an rnnkit.nn recurrent layer (RNN, LSTM or GRU), got {type(layer).__name__}")
    return layer


def gradient_flow(
    layer: RecurrentLayer, x: Tensor, loss: Callable[[Tensor], Tensor] | None = None, key: str | None = None
) -> Tensor:
    """‖∂L_T/∂h_k‖ for k = 1..T-1 (T-1,), averaged over the batch, where L_T = loss(h_T) (default: the sum of
    h_T's entries) is a loss on the last step only. x is (T, B, I) time-major; `key` names the traced
    layer and direction (default: the top layer's forward direction)."""
    layer = check_layer(layer)
    if x.dim() != 3 or x.shape[0] < 2:
        raise ValueError(f"x: expected (T, B, I) with T >= 2 steps, got shape {tuple(x.shape)}")
    with trace(layer, keep_graph=True) as recorded:
        layer(x)
    key = key or f"l{layer.num_layers - 1}"
    states = [step["h"] for step in recorded.steps[key]]  # h_1..h_T, each (B, H), as the steps computed them
    objective = (loss or torch.sum)(states[-1])
    gradients = torch.autograd.grad(objective, states[:-1], allow_unused=True)
    return torch.stack([torch.zeros(x.shape[1]) if g is None else g.norm(dim=-1) for g in gradients]).mean(dim=1)


def step_jacobian_singular_values(layer: RecurrentLayer, x: Tensor) -> Tensor:
    """The singular values of ∂h_t/∂h_{t-1} for t = 2..T along one sequence x (T, I) of a one-layer,
    one-way layer: (T-1, H), largest first. An LSTM's cell state c_{t-1} is held at its value."""
    layer = check_layer(layer)
    if layer.num_layers != 1 or layer.bidirectional:
        raise ValueError("step Jacobians are taken of a one-layer, one-way layer")
    with torch.no_grad(), trace(layer) as recorded:
        layer(x[:, None, :])
    values = recorded["l0"]
    p = cell_parameters(dict(zip(layer._flat_weights_names, layer.effective_weights())), "_l0")
    xw = torch.nn.functional.linear(x, p["weight_ih"], p["bias_ih"])  # (T, G*H)
    singular = []
    for t in range(1, x.shape[0]):
        c_prev = values["c"][t - 1, 0:1] if "c" in values else None

        def step(h_prev: Tensor, t: int = t, c_prev: Tensor | None = c_prev) -> Tensor:
            state = (h_prev[None], c_prev) if c_prev is not None else (h_prev[None],)
            return cell_step(layer.spec, xw[t : t + 1], state, p)[0][0]

        jacobian = torch.autograd.functional.jacobian(step, values["h"][t - 1, 0].detach())  # (H, H)
        singular.append(torch.linalg.svdvals(jacobian))
    return torch.stack(singular)


def weight_singular_values(layer: RecurrentLayer, suffix: str = "_l0") -> dict[str, Tensor]:
    """The singular values of each row block of weight_hh (W_hi, W_hf, ...; for an RNN the whole W_hh)."""
    layer = check_layer(layer)
    weight = dict(zip(layer._flat_weights_names, layer.effective_weights()))["weight_hh" + suffix].detach()
    blocks = weight.tensor_split(len(layer.spec.blocks))
    return {name: torch.linalg.svdvals(block) for name, block in zip(layer.spec.blocks, blocks)}
