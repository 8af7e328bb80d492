"""`rnnkit gradcheck`: the NumPy engine's hand-written BPTT against two outside oracles.

For every cell and variant, one small random case (2 layers, bidirectional, a padded batch with
lengths) is run through `rnnkit.reference` with the scalar loss
    sum(output ⊙ d_output) + sum(h_n ⊙ d_h_n) [+ sum(c_n ⊙ d_c_n)]
and its gradients (every parameter, the input, the initial state) are compared with
  (a) central finite differences of that loss in float64, along one random direction per tensor, and
  (b) torch autograd of the same loss: torch.nn for the standard cells, rnnkit.nn (its pure-equation
      path, fused=False) for the variants torch.nn lacks and its parallel scan for minGRU and minLSTM;
      here outputs and final states are compared too.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit import reference
from rnnkit.spec import EVERY_VARIANT, MINIMAL, CellSpec

VARIANTS = (*EVERY_VARIANT, *MINIMAL)
CLASS_NAMES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU", "mingru": "MinGRU", "minlstm": "MinLSTM"}
EPSILON = 1e-6  # finite-difference step: truncation error ~EPSILON², rounding ~1e-16 / EPSILON


def relative_error(ours: np.ndarray, oracle: np.ndarray) -> float:
    """max|ours - oracle| / max(max|ours|, max|oracle|): the max-norm relative error of a tensor."""
    scale = max(np.abs(ours).max(initial=0.0), np.abs(oracle).max(initial=0.0), np.finfo(np.float64).tiny)
    return float(np.abs(ours - oracle).max(initial=0.0) / scale)


class Case:
    """One random problem: sizes, a reference layer with random weights, input, state and upstream gradients."""

    def __init__(self, spec: CellSpec, rng: np.random.Generator, sizes: dict):
        self.spec = spec
        steps, batch, hidden = sizes["T"], sizes["B"], sizes["H"]
        states = 2 if spec.has_cell_state else 1
        self.layer = getattr(reference, CLASS_NAMES[spec.kind])(
            sizes["I"], hidden, sizes["layers"], bidirectional=True, seed=int(rng.integers(2**31)), **spec.keywords()
        )
        self.x = rng.standard_normal((steps, batch, sizes["I"]))  # (T, B, I)
        self.hx = [rng.standard_normal((sizes["layers"] * 2, batch, hidden)) for _ in range(states)]  # (L*D, B, H)
        self.d_output = rng.standard_normal((steps, batch, 2 * hidden))  # (T, B, D*H)
        self.d_state = [rng.standard_normal(h.shape) for h in self.hx]  # (L*D, B, H)
        self.lengths = sizes["lengths"]

    def state_names(self) -> tuple[str, ...]:
        return ("h", "c")[: len(self.hx)]

    def loss(self) -> float:
        output, state = self.layer.forward(self.x, self._pack(self.hx), self.lengths)
        finals = state if self.spec.has_cell_state else (state,)
        return float((output * self.d_output).sum() + sum((s * d).sum() for s, d in zip(finals, self.d_state)))

    def reference_results(self) -> dict[str, np.ndarray]:
        output, state = self.layer.forward(self.x, self._pack(self.hx), self.lengths)
        d_input, d_hx, grads = self.layer.backward(self.d_output, self._pack(self.d_state))
        finals = state if self.spec.has_cell_state else (state,)
        d_initial = d_hx if self.spec.has_cell_state else (d_hx,)
        results = {"output": output, **{f"{n}_n": s for n, s in zip(self.state_names(), finals)}}
        results["d_input"] = d_input
        results.update({f"d_{n}_0": d for n, d in zip(self.state_names(), d_initial)})
        return {**results, **grads}

    def _pack(self, states):
        return tuple(states) if self.spec.has_cell_state else states[0]


def finite_differences(case: Case, ours: dict, rng: np.random.Generator) -> tuple[dict, dict]:
    """Per tensor (every parameter, the input, hx): the derivative of the loss along one random unit
    direction v, by central differences and from our gradient g (as g · v).

    One direction per tensor needs two forward passes instead of two per element; a wrong gradient
    agrees with the differences along a random direction only by chance of measure zero.
    """
    arrays = {"d_input": case.x, **{f"d_{n}_0": h for n, h in zip(case.state_names(), case.hx)}}
    arrays.update(case.layer.named_parameters())  # the live parameter arrays, moved in place
    along_ours, along_differences = {}, {}
    for name, array in arrays.items():
        v = rng.standard_normal(array.shape)  # same shape as the tensor
        v /= np.linalg.norm(v)
        saved = array.copy()
        array += EPSILON * v
        plus = case.loss()
        array[...] = saved - EPSILON * v
        minus = case.loss()
        array[...] = saved
        along_differences[name] = (plus - minus) / (2 * EPSILON)
        along_ours[name] = (ours[name] * v).sum(), np.linalg.norm(ours[name])
    return along_ours, along_differences


def directional_error(ours: tuple[float, float], difference: float) -> float:
    """|g · v - difference| / ‖g‖: the error relative to the largest derivative along a unit direction."""
    along, norm = ours
    return float(abs(along - difference) / max(norm, np.finfo(np.float64).tiny))


def rnnkit_nn_available() -> bool:
    try:
        import rnnkit.nn  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name != "rnnkit.nn":
            raise
        return False
    return True


def torch_module(spec: CellSpec, sizes: dict):
    """torch.nn's layer for a standard cell, else rnnkit.nn's pure-equation layer, in float64."""
    if spec.is_standard:
        keywords = {"nonlinearity": spec.nonlinearity} if spec.kind == "rnn" else {}
        module_class = getattr(torch.nn, CLASS_NAMES[spec.kind])
    else:
        from rnnkit import nn as rnnkit_nn

        # the equations, not a kernel; the minimal cells by their parallel scan
        keywords = {"mode": "parallel"} if spec.is_minimal else {**spec.keywords(), "fused": False}
        module_class = getattr(rnnkit_nn, CLASS_NAMES[spec.kind])
    module = module_class(sizes["I"], sizes["H"], sizes["layers"], bidirectional=True, **keywords)
    return module.double()


def autograd(case: Case, module) -> dict[str, np.ndarray]:
    """Outputs, final states and gradients of the same loss by torch autograd."""
    module.load_state_dict({k: torch.from_numpy(v) for k, v in case.layer.state_dict().items()}, strict=True)
    x = torch.tensor(case.x, requires_grad=True)  # (T, B, I)
    hx = [torch.tensor(h, requires_grad=True) for h in case.hx]  # (L*D, B, H)
    packed = pack_padded_sequence(x, torch.tensor(case.lengths), enforce_sorted=False)
    packed_output, state = module(packed, tuple(hx) if case.spec.has_cell_state else hx[0])
    output, _ = pad_packed_sequence(packed_output, total_length=case.x.shape[0])  # (T, B, D*H)
    finals = state if case.spec.has_cell_state else (state,)
    loss = (output * torch.from_numpy(case.d_output)).sum()
    loss = loss + sum((s * torch.from_numpy(d)).sum() for s, d in zip(finals, case.d_state))
    loss.backward()
    results = {"output": output, **{f"{n}_n": s for n, s in zip(case.state_names(), finals)}}
    results["d_input"] = x.grad
    results.update({f"d_{n}_0": h.grad for n, h in zip(case.state_names(), hx)})
    results.update({name: p.grad for name, p in module.named_parameters()})
    return {name: value.detach().numpy() for name, value in results.items()}


def compare(ours: dict, oracle: dict, error=relative_error) -> tuple[float, str]:
    """Worst error over the oracle's tensors, and that tensor's name."""
    if set(oracle) - set(ours):
        raise KeyError(f"tensors missing from the reference: {sorted(set(oracle) - set(ours))}")
    errors = {name: error(ours[name], oracle[name]) for name in oracle}
    worst = max(errors, key=errors.get)
    return errors[worst], worst


def draw_sizes(rng: np.random.Generator) -> dict:
    """Small sizes where the input, hidden and stacked-input widths all differ, so no transpose hides."""
    hidden = int(rng.integers(2, 4))
    inputs = int(rng.choice([n for n in range(2, 6) if n not in (hidden, 2 * hidden)]))
    steps = int(rng.integers(3, 6))
    lengths = rng.permutation([steps, int(rng.integers(1, steps)), int(rng.integers(1, steps + 1))])
    return {"T": steps, "B": 3, "I": inputs, "H": hidden, "layers": 2, "lengths": [int(n) for n in lengths]}


def judge(check: str, compute, tolerance: float) -> tuple[str, str, float | None, str]:
    """One row (check, result, error, worst tensor or the error message) of the table.

    `compute` returns (worst error, worst tensor's name)."""
    try:
        error, worst = compute()
    except Exception as exc:  # an oracle that cannot run is a failed check, shown in its row
        return check, "FAIL", None, f"{type(exc).__name__}: {exc}"
    return check, "pass" if error <= tolerance else "FAIL", error, worst


def check_variant(spec: CellSpec, rng: np.random.Generator, sizes: dict, tolerance: float) -> list[tuple]:
    autograd_check = "torch.nn" if spec.is_standard else "rnnkit.nn"
    try:
        case = Case(spec, rng, sizes)
        ours = case.reference_results()
    except Exception as exc:  # the reference itself fails: both checks fail, and the table goes on
        message = f"{type(exc).__name__}: {exc}"
        return [(check, "FAIL", None, message) for check in ("finite differences", autograd_check)]
    rows = [
        judge(
            "finite differences",
            lambda: compare(*finite_differences(case, ours, rng), error=directional_error),
            tolerance,
        )
    ]
    if spec.is_standard or rnnkit_nn_available():
        rows.append(judge(autograd_check, lambda: compare(ours, autograd(case, torch_module(spec, sizes))), tolerance))
    else:
        rows.append((autograd_check, "skip", None, "rnnkit.nn is not available"))
    return rows


def run(seed: int = 0, tolerance: float = 1e-6) -> int:
    rng = np.random.default_rng(seed)
    sizes = draw_sizes(rng)
    print(f"rnnkit gradcheck: seed {seed}, tolerance {tolerance:g}, float64")
    print(
        f"case: T={sizes['T']} B={sizes['B']} input={sizes['I']} hidden={sizes['H']}, {sizes['layers']} layers, "
        f"bidirectional, lengths {sizes['lengths']}"
    )
    print("each row: the worst tensor among every parameter gradient, d_input and d_hx (and, against autograd,")
    print("  output and final states) and its relative error:")
    print("  finite differences: along a random unit direction v per tensor,")
    print("    |g·v - (L(+εv) - L(-εv))/2ε| / ‖g‖ with g our gradient, L the loss, ε = 1e-6")
    print("  autograd: max|ours - autograd| / max(max|ours|, max|autograd|) over the tensor's elements")
    print()
    header = f"{'cell':<7} {'variant':<28} {'check':<19} {'max rel. error':>14}  {'worst tensor':<22} result"
    print(header)
    print("-" * len(header))
    counts = {"pass": 0, "FAIL": 0, "skip": 0}
    for spec in VARIANTS:
        variant = spec.variant_name.removeprefix(spec.kind).strip() or "default"
        for check, result, error, detail in check_variant(spec, rng, sizes, tolerance):
            counts[result] += 1
            shown = "-" if error is None else f"{error:.2e}"
            print(f"{spec.kind:<7} {variant:<28} {check:<19} {shown:>14}  {detail:<22} {result}")
    print()
    print(f"{counts['pass']} passed, {counts['FAIL']} failed, {counts['skip']} skipped")
    return 1 if counts["FAIL"] else 0
