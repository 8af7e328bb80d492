"""rnnkit's fused recurrence kernel (rnnkit.nn.kernels) against the equations path (fused=False), which
the other tests hold to torch.nn and the NumPy engine: outputs, final states and every gradient."""

from __future__ import annotations

import copy
import itertools
import warnings
from pathlib import Path

import pytest
import torch
from common import OUR_CLASSES, VARIANTS, variant_id
from torch.nn.utils.rnn import pack_padded_sequence

from helpers import assert_close
from rnnkit import nn as rnn
from rnnkit.nn import kernels
from rnnkit.spec import CellSpec

FORMS = ["padded", "packed"]
# The variants whose fused path is rnnkit's kernel (the standard LSTM and RNN keep torch's).
ON_RNNKIT_KERNEL = [
    v for v in VARIANTS if not rnn.layers.uses_torch_kernel(CellSpec(v[0], **v[1]), torch.device("cpu"))
]


def twin_layers(
    kind, keywords, num_layers, bidirectional, batch_first, input_size=3, H=5, dtype=torch.float64, **extra
):
    """The same weights on the kernel (fused) and on the equations."""
    torch.manual_seed(1)
    cls = OUR_CLASSES[kind]
    common = dict(
        num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, dtype=dtype, **keywords, **extra
    )
    fused, equations = cls(input_size, H, **common), cls(input_size, H, fused=False, **common)
    with torch.no_grad():  # a forget bias or random biases, so no gradient is trivially zero
        for parameter in fused.parameters():
            parameter.uniform_(-0.6, 0.6)
    equations.load_state_dict(fused.state_dict(), strict=True)
    return fused, equations


def run(layer, x, lengths, form, batch_first, state, seed=0, upstream=None):
    """Forward and backward with a random upstream gradient on output and final state; returns every tensor."""
    x = x.detach().clone().requires_grad_(True)
    state = tuple(s.detach().clone().requires_grad_(True) for s in state)
    inputs = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False) if form == "packed" else x
    layer.zero_grad()
    output, final = layer(inputs, state if len(state) == 2 else state[0])
    output = output.data if form == "packed" else output
    finals = final if isinstance(final, tuple) else (final,)
    generator = torch.Generator().manual_seed(seed)
    loss = sum(
        (t * torch.randn(t.shape, dtype=upstream or t.dtype, generator=generator).to(t.dtype)).sum()
        for t in (output, *finals)
    )
    loss.backward()
    grads = {f"d{name}": p.grad for name, p in layer.named_parameters()}
    return {
        "output": output,
        **{f"final{i}": f for i, f in enumerate(finals)},
        "dx": x.grad,
        **{f"dstate{i}": s.grad for i, s in enumerate(state)},
        **grads,
    }


def batch(
    kind, num_layers, bidirectional, batch_first, T=6, B=4, input_size=3, H=5, lengths=(6, 2, 5, 1), dtype=torch.float64
):
    generator = torch.Generator().manual_seed(2)
    x = (
        torch.randn(B, T, input_size, dtype=dtype, generator=generator)
        if batch_first
        else torch.randn(T, B, input_size, dtype=dtype, generator=generator)
    )
    D = 2 if bidirectional else 1
    parts = 2 if kind == "lstm" else 1
    state = tuple(torch.randn(num_layers * D, B, H, dtype=dtype, generator=generator) for _ in range(parts))
    return x, torch.tensor(lengths[:B]), state


def assert_same(ours: dict, reference: dict, label: str, rtol: float, atol: float) -> None:
    assert ours.keys() == reference.keys()
    for key in reference:
        assert ours[key] is not None and reference[key] is not None, f"{label}: no {key}"
        assert_close(ours[key], reference[key], f"{label} {key}", rtol=rtol, atol=atol)


def test_the_kernel_builds_here():
    assert kernels.load() is not None, kernels.unavailable_reason()


GRID = list(itertools.product([1, 2], [False, True], FORMS, [False, True]))


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_kernel_equals_the_equations_in_float64(variant):
    kind, keywords = variant
    for num_layers, bidirectional, form, batch_first in GRID:
        fused, equations = twin_layers(kind, keywords, num_layers, bidirectional, batch_first)
        x, lengths, state = batch(kind, num_layers, bidirectional, batch_first)
        label = f"{variant_id(variant)} L={num_layers} bi={bidirectional} {form} batch_first={batch_first}"
        assert_same(
            run(fused, x, lengths, form, batch_first, state),
            run(equations, x, lengths, form, batch_first, state),
            label,
            rtol=1e-10,
            atol=1e-10,
        )


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
@pytest.mark.parametrize(
    "T,B,H,lengths",
    [(1, 1, 7, (1,)), (5, 1, 9, (5,)), (1, 3, 13, (1, 1, 1)), (7, 3, 17, (7, 3, 1))],
    ids=["T1-B1", "B1", "T1", "H17"],
)
def test_kernel_equals_the_equations_at_odd_sizes(variant, T, B, H, lengths):
    kind, keywords = variant
    for bidirectional, form in itertools.product([False, True], FORMS):
        fused, equations = twin_layers(kind, keywords, 2, bidirectional, False, H=H)
        x, lengths_, state = batch(kind, 2, bidirectional, False, T=T, B=B, H=H, lengths=lengths)
        label = f"{variant_id(variant)} T={T} B={B} H={H} bi={bidirectional} {form}"
        assert_same(
            run(fused, x, lengths_, form, False, state),
            run(equations, x, lengths_, form, False, state),
            label,
            rtol=1e-10,
            atol=1e-10,
        )


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_kernel_agrees_in_float32(variant):
    """In float32 the kernel is as close to the float64 result (same weights) as the equations are:
    within 1e-4 of each tensor's largest magnitude (BPTT sums many rounded terms)."""
    kind, keywords = variant
    fused, equations = twin_layers(kind, keywords, 2, True, False, input_size=8, H=24, dtype=torch.float32)
    exact = copy.deepcopy(equations).double()
    x, lengths, state = batch(
        kind, 2, True, False, T=12, B=5, input_size=8, H=24, lengths=(12, 3, 9, 1, 12), dtype=torch.float32
    )
    for form in FORMS:
        reference = run(
            exact, x.double(), lengths, form, False, tuple(s.double() for s in state), upstream=torch.float64
        )
        for engine, layer in (("kernel", fused), ("equations", equations)):
            ours = run(layer, x, lengths, form, False, state, upstream=torch.float64)
            for key, value in reference.items():
                assert_close(
                    ours[key].double(),
                    value,
                    f"{variant_id(variant)} float32 {form} {engine} {key}",
                    rtol=0.0,
                    atol=1e-4 * float(value.detach().abs().max()),
                )


@pytest.mark.parametrize("variant", ON_RNNKIT_KERNEL, ids=variant_id)
def test_kernel_passes_gradcheck(variant):
    kind, keywords = variant
    torch.manual_seed(0)
    layer = OUR_CLASSES[kind](2, 3, num_layers=2, bidirectional=True, dtype=torch.float64, **keywords)
    names = [name for name, _ in layer.named_parameters()]
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([4, 2])
    h0 = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)

    def function(x, h0, c0, *weights):
        packed_input = pack_padded_sequence(x, lengths, enforce_sorted=False)
        state = (h0, c0) if kind == "lstm" else h0
        output, final = torch.func.functional_call(layer, dict(zip(names, weights)), (packed_input, state))
        return (output.data, *(final if isinstance(final, tuple) else (final,)))

    weights = [p.detach().clone().requires_grad_(True) for p in layer.parameters()]
    assert torch.autograd.gradcheck(function, (x, h0, c0, *weights), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("variant", ON_RNNKIT_KERNEL, ids=variant_id)
def test_kernel_passes_gradgradcheck(variant):
    """Second derivatives through the kernel (packed, bidirectional, with an initial state; the standard
    GRU also stacked), as torch.nn's layers have them: every input and weight."""
    kind, keywords = variant
    torch.manual_seed(0)
    num_layers = 2 if kind == "gru" and not keywords else 1
    layer = OUR_CLASSES[kind](1, 2, num_layers=num_layers, bidirectional=True, dtype=torch.float64, **keywords)
    names = [name for name, _ in layer.named_parameters()]
    x = torch.randn(2, 2, 1, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2 * num_layers, 2, 2, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(2 * num_layers, 2, 2, dtype=torch.float64, requires_grad=True)

    def function(x, h0, c0, *weights):
        packed_input = pack_padded_sequence(x, torch.tensor([2, 1]))
        state = (h0, c0) if kind == "lstm" else h0
        output, final = torch.func.functional_call(layer, dict(zip(names, weights)), (packed_input, state))
        return (output.data, *(final if isinstance(final, tuple) else (final,)))

    weights = [p.detach().clone().requires_grad_(True) for p in layer.parameters()]
    assert torch.autograd.gradgradcheck(function, (x, h0, c0, *weights), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("variant", ON_RNNKIT_KERNEL, ids=variant_id)
def test_a_kernel_cell_passes_gradgradcheck(variant):
    kind, keywords = variant
    torch.manual_seed(0)
    cell = getattr(rnn, {"rnn": "RNNCell", "lstm": "LSTMCell", "gru": "GRUCell"}[kind])(
        2, 3, dtype=torch.float64, **keywords
    )
    x = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    c = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x, h, c: cell(x, (h, c) if kind == "lstm" else h), (x, h, c))


def test_the_kernel_is_what_runs_by_default(monkeypatch):
    calls = []
    original = kernels.FusedRecurrence.forward
    monkeypatch.setattr(kernels.FusedRecurrence, "forward", staticmethod(lambda *a: calls.append(1) or original(*a)))
    rnn.LSTM(3, 4, num_layers=2, bidirectional=True, peephole=True)(torch.randn(5, 2, 3))
    assert len(calls) == 4  # one call per direction and layer
    rnn.LSTM(3, 4, peephole=True, fused=False)(torch.randn(5, 2, 3))
    rnn.LSTM(3, 4)(torch.randn(5, 2, 3))  # the standard LSTM: torch's kernel
    assert len(calls) == 4


def test_padding_is_not_computed_and_does_not_move_the_final_state():
    """Each sequence of a packed batch alone gives the same output and final state as in the batch."""
    torch.manual_seed(0)
    layer = rnn.GRU(3, 5, bidirectional=True, reset="before", dtype=torch.float64)
    x, lengths = torch.randn(6, 3, 3, dtype=torch.float64), torch.tensor([6, 2, 4])
    output, final = layer(pack_padded_sequence(x, lengths, enforce_sorted=False))
    padded, _ = torch.nn.utils.rnn.pad_packed_sequence(output)
    for b, length in enumerate(lengths.tolist()):
        alone, alone_final = layer(x[:length, b : b + 1])
        assert_close(padded[:length, b], alone[:, 0], f"sequence {b} output")
        assert_close(final[:, b], alone_final[:, 0], f"sequence {b} final state")


def test_dropout_between_layers_draws_the_same_masks_as_the_equations():
    fused, equations = twin_layers("lstm", {"coupled": True}, 3, True, True, dropout=0.4)
    x, lengths, state = batch("lstm", 3, True, True)
    results = []
    for layer in (fused, equations):
        torch.manual_seed(11)
        results.append(run(layer, x, lengths, "padded", True, state))
    assert_same(*results, "dropout 0.4", rtol=1e-10, atol=1e-10)


def test_carried_state_equals_one_long_forward():
    torch.manual_seed(0)
    layer = rnn.LSTM(3, 4, num_layers=2, gates="if", dtype=torch.float64)
    x = torch.randn(10, 2, 3, dtype=torch.float64)
    whole, whole_final = layer(x)
    first, state = layer(x[:4])
    second, final = layer(x[4:], state)
    assert_close(torch.cat([first, second]), whole, "output")
    for a, b in zip(final, whole_final):
        assert_close(a, b, "final state")


def test_non_contiguous_input_is_handled():
    torch.manual_seed(0)
    layer = rnn.GRU(3, 4, reset_gate=False, batch_first=True)
    x = torch.randn(5, 2, 3).transpose(0, 1)  # (B, T, I), not contiguous
    assert not x.is_contiguous()
    assert torch.equal(layer(x)[0], layer(x.contiguous())[0])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_on_the_cpu_is_refused_naming_the_supported_dtypes(dtype):
    layer = rnn.LSTM(3, 4, peephole=True, dtype=dtype)
    with pytest.raises(TypeError, match="supports float32 and float64 on the CPU.*fused=False"):
        layer(torch.randn(5, 2, 3, dtype=dtype))
    output, _ = rnn.LSTM(3, 4, peephole=True, dtype=dtype, fused=False)(torch.randn(5, 2, 3, dtype=dtype))
    assert output.dtype == dtype


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_variant_cells_step_through_the_kernel(variant):
    kind, keywords = variant
    name = {"rnn": "RNNCell", "lstm": "LSTMCell", "gru": "GRUCell"}[kind]
    torch.manual_seed(0)
    fused = getattr(rnn, name)(3, 5, dtype=torch.float64, **keywords)
    equations = getattr(rnn, name)(3, 5, dtype=torch.float64, fused=False, **keywords)
    equations.load_state_dict(fused.state_dict())
    x = torch.randn(4, 3, dtype=torch.float64)
    h = torch.randn(4, 5, dtype=torch.float64)
    state = (h, torch.randn_like(h)) if kind == "lstm" else h
    results = []
    for cell in (fused, equations):
        cell.zero_grad()
        with torch.no_grad():
            step = cell(x, state)
        new = cell(x, state)
        new_parts = new if isinstance(new, tuple) else (new,)
        sum(part.sum() for part in new_parts).backward()
        results.append(
            {
                "no_grad": step if isinstance(step, torch.Tensor) else torch.cat(step),
                "step": torch.cat(new_parts),
                **{n: p.grad for n, p in cell.named_parameters()},
            }
        )
    assert_same(*results, f"{name} {variant_id(variant)}", rtol=1e-10, atol=1e-10)


# ---- without the kernel --------------------------------------------------------------------------
@pytest.fixture
def no_kernel(monkeypatch):
    """A machine where the kernel could not be built."""
    monkeypatch.setattr(kernels, "_state", {"module": None, "reason": "simulated"})


@pytest.mark.parametrize("variant", ON_RNNKIT_KERNEL, ids=variant_id)
def test_without_the_kernel_the_equations_run_with_identical_results(variant, no_kernel):
    kind, keywords = variant
    fused, equations = twin_layers(kind, keywords, 2, True, False)
    x, lengths, state = batch(kind, 2, True, False)
    for form in FORMS:
        ours, reference = run(fused, x, lengths, form, False, state), run(equations, x, lengths, form, False, state)
        for key in reference:
            assert torch.equal(ours[key], reference[key]), key


def test_a_failed_build_warns_once_saying_why(monkeypatch, tmp_path):
    monkeypatch.setattr(kernels, "_state", {})
    monkeypatch.setenv("RNNKIT_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer = rnn.GRU(3, 4, reset="before")
        output, _ = layer(torch.randn(5, 2, 3))
        layer(torch.randn(5, 2, 3))
    messages = [str(w.message) for w in caught if "fused recurrence kernel" in str(w.message)]
    assert len(messages) == 1, messages
    assert "no C++ compiler" in messages[0] and "no-such-compiler not found" in messages[0]
    assert "\n" not in messages[0]
    assert kernels.unavailable_reason().startswith("no C++ compiler")
    equations = rnn.GRU(3, 4, reset="before", fused=False)
    equations.load_state_dict(layer.state_dict())
    x = torch.randn(5, 2, 3)
    assert torch.equal(layer(x)[0], equations(x)[0])


@pytest.mark.skipif(not kernels._openmp(), reason="torch's parallel backend is not OpenMP on Linux")
def test_kernel_is_built_with_torchs_openmp():
    """ATen's parallel_for is an OpenMP pragma in torch's headers: built without -fopenmp the kernel would
    run every pass on one thread, and never call into the OpenMP runtime."""
    module = kernels.load()
    assert module is not None, kernels.unavailable_reason()
    assert b"GOMP_parallel" in Path(module.__file__).read_bytes()


def test_rnnkit_kernels_0_turns_the_kernel_off(monkeypatch):
    monkeypatch.setattr(kernels, "_state", {})
    monkeypatch.setenv("RNNKIT_KERNELS", "0")
    with pytest.warns(UserWarning, match=r"unavailable \(RNNKIT_KERNELS=0\)"):
        assert kernels.load() is None


@pytest.mark.parametrize("H", [128, 220], ids=["rows sliced over threads", "each pass split over threads"])
@pytest.mark.parametrize(
    "variant", [("lstm", {"peephole": True}), ("gru", {}), ("gru", {"reset": "before"})], ids=variant_id
)
def test_kernel_on_two_threads_agrees(variant, H):
    """Batches large enough for several threads. With a recurrent weight of at most 1 MiB (H = 128 in
    float64) each thread takes a slice of the rows through every step; the slices' edges fall inside
    the packed steps' shrinking batches. A larger weight (H = 220) splits each step's product and pass."""
    kind, keywords = variant
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fused, equations = twin_layers(kind, keywords, 1, True, False, input_size=16, H=H)
        x, lengths, state = batch(kind, 1, True, False, T=3, B=161, input_size=16, H=H, lengths=(3, 2, 1) * 54 + (2,))
        for form in FORMS:
            assert_same(
                run(fused, x, lengths, form, False, state),
                run(equations, x, lengths, form, False, state),
                f"{variant_id(variant)} {form}, 2 threads",
                rtol=1e-10,
                atol=1e-10,
            )
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_non_finite_values_stay_non_finite(dtype):
    """A NaN or infinite input gives NaN outputs, as on the equations path: divergence stays visible."""
    layer = rnn.GRU(3, 4, reset="before", dtype=dtype)
    x = torch.randn(5, 2, 3, dtype=dtype)
    x[2, 0, 1] = float("nan")
    x[1, 1, 0] = float("inf")
    output, _ = layer(x)
    reference = rnn.GRU(3, 4, reset="before", dtype=dtype, fused=False)
    reference.load_state_dict(layer.state_dict())
    expected, _ = reference(x)
    assert torch.equal(torch.isfinite(output), torch.isfinite(expected))
    assert not torch.isfinite(output[2:, 0]).any()
