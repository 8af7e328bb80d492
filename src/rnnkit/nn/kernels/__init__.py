"""rnnkit's fused recurrence: every cell and variant, forward and hand-written backward over a whole
sequence in one C++ call per direction (recurrence_cpu.cpp says how it works).

Dimension letters: N packed rows (the sum of the per-step batch sizes), B batch, H hidden size,
G row blocks, GH = G * H.

The extension is compiled with torch.utils.cpp_extension on first use (g++ and ninja) and cached in
`$RNNKIT_KERNEL_CACHE`, by default `~/.cache/rnnkit/kernels`, under a name keyed by the source and the
torch version, so a build is reused until either changes. `RNNKIT_KERNELS=0` turns it off. When it
cannot be built the layers run the equations path (steps.py), which computes the same values, and a
warning says why, once.

`kernel_for(x)` is the one place that chooses by device: the CPU build for CPU tensors, None (the
equations path) elsewhere until a CUDA kernel of the same design exists.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sys
import threading
import warnings
from pathlib import Path

import torch
from torch import Tensor

from rnnkit.nn.steps import cell_step
from rnnkit.spec import CellSpec

SOURCE = Path(__file__).with_name("recurrence_cpu.cpp")
SUPPORTED_DTYPES = (torch.float32, torch.float64)

_lock = threading.Lock()
_state: dict = {}  # "module": the loaded extension or None; "reason": why not


def cache_directory() -> Path:
    root = os.environ.get("RNNKIT_KERNEL_CACHE") or Path.home() / ".cache" / "rnnkit" / "kernels"
    return Path(root)


def _openmp() -> bool:
    """ATen's parallel_for is inlined from its headers as OpenMP pragmas when torch's parallel backend is
    OpenMP: the kernel must be compiled and linked with -fopenmp then, or every pass runs on one thread.
    Linking names libgomp.so.1, which resolves to the copy torch has already loaded. Only on Linux, whose
    torch wheels link GCC's libgomp; elsewhere the passes stay on the calling thread."""
    return sys.platform.startswith("linux") and "parallel backend: OpenMP" in torch.__config__.parallel_info()


def _compile_flags() -> list[str]:
    """-O3, OpenMP as torch uses it, and the widest SIMD vectors (ATen's, with SLEEF's exp and tanh) torch
    found the CPU able to run."""
    flags = ["-O3"] + (["-fopenmp"] if _openmp() else [])
    capability = torch.backends.cpu.get_cpu_capability()
    if capability == "AVX512":
        flags += [
            "-mavx512f",
            "-mavx512bw",
            "-mavx512vl",
            "-mavx512dq",
            "-mfma",
            "-mf16c",
            "-DCPU_CAPABILITY=AVX512",
            "-DCPU_CAPABILITY_AVX512",
        ]
    elif capability == "AVX2":
        flags += ["-mavx2", "-mfma", "-mf16c", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"]
    return flags


def _build_name() -> str:
    key = SOURCE.read_bytes() + torch.__version__.encode() + " ".join(_compile_flags()).encode()
    return f"rnnkit_recurrence_{hashlib.sha256(key).hexdigest()[:12]}"


def _ninja_on_path() -> None:
    """torch's builder runs `ninja`; the pip package's binary is not on PATH outside an activated venv."""
    if shutil.which("ninja"):
        return
    try:
        import ninja  # the pip package
    except ImportError:
        return
    os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")


def _why_build_failed(error: BaseException) -> str:
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        return f"no C++ compiler ({compiler} not found)"
    if shutil.which("ninja") is None:
        return "ninja not found (pip install ninja)"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line.lower()]
    return ((errors or lines or [type(error).__name__])[0])[:200]


def load():
    """The compiled extension, built on first use; None (after one warning) if it cannot be."""
    if "module" in _state:
        return _state["module"]
    with _lock:
        if "module" in _state:
            return _state["module"]
        module, reason = None, None
        if os.environ.get("RNNKIT_KERNELS", "1") == "0":
            reason = "RNNKIT_KERNELS=0"
        else:
            try:
                from torch.utils import cpp_extension

                _ninja_on_path()
                directory = cache_directory() / _build_name()
                directory.mkdir(parents=True, exist_ok=True)
                module = cpp_extension.load(
                    name=_build_name(),
                    sources=[str(SOURCE)],
                    build_directory=str(directory),
                    extra_cflags=_compile_flags(),
                    extra_ldflags=["-fopenmp"] if _openmp() else [],
                    verbose=False,
                )
            except Exception as error:  # any failure to build or import: the equations path stays correct
                reason = _why_build_failed(error)
        if module is None:
            warnings.warn(
                f"rnnkit: the fused recurrence kernel is unavailable ({reason}); "
                "variants run the equations path, with the same results, more slowly",
                stacklevel=3,
            )
        _state.update(module=module, reason=reason)
        return module


def unavailable_reason() -> str | None:
    """Why the kernel is not in use (None when it is, or has not been tried)."""
    return _state.get("reason")


def kernel_for(x: Tensor):
    """The kernel for x's device and dtype, or None for the equations path (device dispatch is here)."""
    if x.device.type != "cpu":
        return None  # the design carries over to CUDA; until that kernel exists, the equations path
    if x.dtype not in SUPPORTED_DTYPES:
        raise TypeError(
            f"the fused recurrence kernel supports float32 and float64 on the CPU, got {x.dtype}; "
            "pass fused=False for the equations path"
        )
    return load()


@functools.lru_cache(maxsize=None)
def layout(spec: CellSpec) -> tuple[int, ...]:
    """The variant as the kernel reads it: row-block and peephole-block offsets (-1 when absent)."""
    block = {name: index for index, name in enumerate(spec.blocks)}
    peep = {name: index for index, name in enumerate(spec.peephole_blocks)}
    kind = {"rnn": 0, "lstm": 1, "gru": 2}[spec.kind]
    reset_before = spec.kind == "gru" and spec.reset == "before" and spec.reset_gate
    return (
        kind,
        int(spec.nonlinearity == "relu"),
        *(block.get(g, -1) for g in "ifgo"),
        *(peep.get(g, -1) for g in "ifo"),
        int(spec.coupled),
        *(block.get(g, -1) for g in "rzn"),
        int(reset_before),
    )


class FusedRecurrence(torch.autograd.Function):
    """One direction of one layer over packed rows x (N, I): the input projection xw = W_ih x + b_ih
    (N, GH) of every step, then the kernel's recurrence; returns the output (N, H) and the final h
    (B, H), and c (B, H) for an LSTM.

    The projection is inside so that its inputs, which its own backward would keep anyway, are what a
    second derivative recomputes from: the first-order backward is the kernel's plus the projection's
    three products, and keeps nothing more. A backward asked to build a graph (create_graph=True, a
    double backward) recomputes the direction through the equations (`packed_equations`) and
    differentiates that, so every variant has torch.nn's full contract whatever kernel runs it."""

    @staticmethod
    def forward(ctx, kernel, spec, batch_sizes, reverse, x, w_ih, b_ih, h0, c0, w_hh, b_hh, w_ch):
        xw = torch.nn.functional.linear(x, w_ih, b_ih)  # (N, GH), every step at once
        save = any(ctx.needs_input_grad)  # False under no_grad: nothing is kept for a backward
        result = kernel.forward(layout(spec), xw, h0, c0, w_hh, b_hh, w_ch, batch_sizes, reverse, save)
        output, h_n, c_n = result[:3]
        ctx.kernel, ctx.spec, ctx.reverse = kernel, spec, reverse
        ctx.has_bias, ctx.lstm = b_hh is not None, c0 is not None
        if save:
            ctx.save_for_backward(batch_sizes, x, w_ih, b_ih, h0, c0, w_hh, b_hh, w_ch, *result[3:])
        return (output, h_n, c_n) if ctx.lstm else (output, h_n)

    @staticmethod
    def backward(ctx, d_output, dh_n, dc_n=None):
        batch_sizes, x, w_ih, b_ih, h0, c0, w_hh, b_hh, w_ch, *saved = ctx.saved_tensors
        inputs = (x, w_ih, b_ih, h0, c0, w_hh, b_hh, w_ch)
        if torch.is_grad_enabled():  # create_graph=True: the gradient must itself be differentiable
            gradients = _equations_backward(ctx, batch_sizes, inputs, (d_output, dh_n, dc_n))
            return None, None, None, None, *gradients
        dxw, dh0, dc0, dw_hh, db_hh, dw_ch = ctx.kernel.backward(
            layout(ctx.spec), d_output, dh_n, dc_n, w_hh, ctx.has_bias, w_ch, batch_sizes, ctx.reverse, saved
        )
        needs = ctx.needs_input_grad
        dx = dxw.mm(w_ih) if needs[4] else None  # (N, I)
        dw_ih = dxw.t().mm(x) if needs[5] else None  # (GH, I)
        db_ih = dxw.sum(0) if b_ih is not None and needs[6] else None  # (GH,)
        return None, None, None, None, dx, dw_ih, db_ih, dh0, dc0, dw_hh, db_hh, dw_ch


def _equations_backward(ctx, batch_sizes: Tensor, inputs: tuple, upstream: tuple) -> list:
    """The gradients of every input, as a graph: the direction recomputed through the equations from the
    saved inputs and differentiated by autograd (with create_graph, so a third derivative works too)."""
    x, w_ih, b_ih, h0, c0, w_hh, b_hh, w_ch = inputs
    with torch.enable_grad():
        p = {"weight_ih": w_ih, "bias_ih": b_ih, "weight_hh": w_hh, "bias_hh": b_hh, "weight_ch": w_ch}
        state = (h0, c0) if ctx.lstm else (h0,)
        output, final = packed_equations(ctx.spec, x, batch_sizes, ctx.reverse, state, p)
        results = (output, *final)
        wanted = [t for t, needed in zip(inputs, ctx.needs_input_grad[4:]) if needed and t is not None]
        found = iter(
            torch.autograd.grad(results, wanted, upstream[: len(results)], create_graph=True, allow_unused=True)
        )
    return [next(found) if needed and t is not None else None for t, needed in zip(inputs, ctx.needs_input_grad[4:])]


def packed_equations(
    spec: CellSpec, x: Tensor, batch_sizes: Tensor, reverse: bool, state: tuple[Tensor, ...], p: dict
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """One direction over packed rows x (N, I) step by step through the equations (rnnkit.nn.steps): what
    the kernel computes, as differentiable torch operations. The rows of step t are the first
    batch_sizes[t] sequences; the reverse direction starts each sequence at its own last step."""
    xw = torch.nn.functional.linear(x, p["weight_ih"], p["bias_ih"])  # (N, GH)
    sizes = batch_sizes.tolist()
    starts = [0]
    for size in sizes[:-1]:
        starts.append(starts[-1] + size)
    outputs: list[Tensor | None] = [None] * len(sizes)
    if not reverse:
        current = state
        for t, (start, size) in enumerate(zip(starts, sizes)):
            new = cell_step(spec, xw[start : start + size], tuple(s[:size] for s in current), p)
            current = tuple(torch.cat([n, s[size:]]) for n, s in zip(new, current))  # ended sequences keep theirs
            outputs[t] = new[0]
    else:
        current = tuple(s[: sizes[-1]] for s in state)
        for t in reversed(range(len(sizes))):
            start, size = starts[t], sizes[t]
            current = tuple(torch.cat([c, s[c.shape[0] : size]]) for c, s in zip(current, state))  # new ones begin
            current = cell_step(spec, xw[start : start + size], current, p)
            outputs[t] = current[0]
    return torch.cat(outputs), current


def run_direction(
    kernel, spec: CellSpec, x: Tensor, batch_sizes: Tensor, reverse: bool, state: tuple[Tensor, ...], p: dict
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """The output (N, H) and final state of one direction over packed rows x (N, I). With no gradient to
    record (sampling, evaluation) the kernel is called directly and keeps nothing for a backward."""
    c0 = state[1] if spec.has_cell_state else None
    tensors = (x, p["weight_ih"], p["bias_ih"], state[0], c0, p["weight_hh"], p["bias_hh"], p["weight_ch"])
    if not torch.is_grad_enabled() or not any(t is not None and t.requires_grad for t in tensors):
        xw = torch.nn.functional.linear(x, p["weight_ih"], p["bias_ih"])  # (N, GH)
        output, h_n, c_n = kernel.forward(layout(spec), xw, *tensors[3:], batch_sizes, reverse, False)[:3]
        return output, (h_n, c_n) if spec.has_cell_state else (h_n,)
    result = FusedRecurrence.apply(kernel, spec, batch_sizes, reverse, *tensors)
    return result[0], tuple(result[1:])
