"""Tools that read models (never train them): how gradients flow back through time.

    gradient_flow(layer, x)             ‖∂L_T/∂h_k‖ for every k < T, from one loss at the last step
    step_jacobian_singular_values(...)  the singular values of ∂h_t/∂h_{t-1} along a sequence
    weight_singular_values(layer)       the singular values of each row block of weight_hh

Pascanu et al. (2013): for a vanilla RNN, ∂h_t/∂h_{t-1} = diag(φ'(a_t)) W_hh, so when the largest
singular value of W_hh is below 1 (and |φ'| ≤ 1) the gradient shrinks exponentially with distance.
"""

from rnnkit.analysis.gradients import gradient_flow, step_jacobian_singular_values, weight_singular_values

__all__ = ["gradient_flow", "step_jacobian_singular_values", "weight_singular_values"]
