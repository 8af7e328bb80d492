"""ONNX export (`rnnkit export RUN --format onnx`): a task's model, in evaluation mode, written with
torch's ONNX exporter and checked with onnxruntime against torch itself.

A task gives an `Exported`: the module to trace (whose recurrent layers are torch.nn's, so that the
exporter writes ONNX's own LSTM, GRU and RNN operators, the GRU with linear_before_reset = 1), the
names of its inputs and outputs, which of their axes are dynamic, and a function that makes inputs of
any batch size and length. A variant has no ONNX operator: a language model of one is traced through
rnnkit's equations for one step, a graph that a caller runs token by token with the state in and out;
it is checked so, over whole sequences. The file is traced at one size and verified at several others, so a size
baked into the graph by mistake is caught. The largest absolute difference over every output and
size is printed.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rnnkit.atomic import write_bytes_atomically
from rnnkit.errors import UsageError
from rnnkit.nn.interop import to_torch
from rnnkit.nn.layers import LSTM

OPSET = 17
TRACED = (2, 6)  # (batch, length) of the example the graph is traced with
CHECKED = ((1, 1), (3, 5), (2, 17), (5, 40))  # the sizes onnxruntime is checked at: none of them traced


@dataclass
class Exported:
    module: torch.nn.Module
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]]
    inputs: Callable[[int, int], tuple]  # (batch, length) -> the module's inputs
    describes: str  # what the outputs are, for the line printed
    traced_inputs: Callable[[int, int], tuple] | None = None  # what tracing needs, if not `inputs`
    one_step: bool = False  # a graph of one step (length 1): its state outputs follow its first output,
    # in the order of its state inputs (after its first input), so that a caller can run it token by token
    reference: torch.nn.Module | None = None  # what the file must compute, if not `module` (which is traced)
    rewrite: Callable[[bytes], bytes] | None = None  # applied to the exported file before it is checked


def require(package: str):
    try:
        return __import__(package)
    except ImportError:
        raise UsageError(f"export needs the {package} package: pip install 'rnnkit[onnx]'") from None


def export_onnx(exported: Exported, path: Path) -> float:
    """Write the ONNX file (whole, or not at all) and return the largest difference onnxruntime shows
    against torch at the checked sizes."""
    require("onnx")
    onnxruntime = require("onnxruntime")
    module = exported.module.eval()
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's advice about its own future
        torch.onnx.export(
            module,
            (exported.traced_inputs or exported.inputs)(*TRACED),
            buffer,
            input_names=exported.input_names,
            output_names=exported.output_names,
            dynamic_axes=exported.dynamic_axes,
            opset_version=OPSET,
            dynamo=False,
        )
    data = buffer.getvalue() if exported.rewrite is None else exported.rewrite(buffer.getvalue())
    module = (exported.reference or module).eval()
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    used = {argument.name for argument in session.get_inputs()}  # the exporter drops inputs nothing reads
    largest = 0.0
    with torch.no_grad():
        for batch, length in CHECKED if not exported.one_step else [(batch, 1) for batch, _ in CHECKED]:
            inputs = exported.inputs(batch, length)
            expected = module(*inputs)
            expected = (expected,) if isinstance(expected, torch.Tensor) else expected
            feed = {name: value.cpu().numpy() for name, value in zip(exported.input_names, inputs) if name in used}
            for got, want in zip(session.run(None, feed), expected):
                largest = max(largest, float(abs(got - want.cpu().numpy()).max()) if want.numel() else 0.0)
    if exported.one_step:
        largest = max(largest, chained_difference(exported, module, session, used))
    write_bytes_atomically(path, data)
    return largest


def chained_difference(exported: Exported, module: torch.nn.Module, session, used: set[str]) -> float:
    """A one-step graph run token by token over a whole sequence, its state carried from each step to the
    next, against torch over the same sequence at once."""
    largest = 0.0
    with torch.no_grad():
        for batch, length in CHECKED[1:]:
            tokens, *state = exported.inputs(batch, length)
            expected = module(tokens, *state)
            for t in range(length):
                feed = dict(zip(exported.input_names, [tokens[t : t + 1], *state]))
                got = session.run(None, {name: value.cpu().numpy() for name, value in feed.items() if name in used})
                largest = max(largest, float(abs(got[0][0] - expected[0][t].cpu().numpy()).max()))
                state = [torch.from_numpy(value).to(tokens.device) for value in got[1:]]
            for got_state, want in zip(state, expected[1:]):
                largest = max(largest, float(abs(got_state - want).max()))
    return largest


def graph_inputs(path: Path) -> list[str]:
    onnx = require("onnx")
    return [argument.name for argument in onnx.load(str(path)).graph.input]


def operators(path: Path) -> list[str]:
    """The distinct operator types of an ONNX file's graph, in order of first use."""
    onnx = require("onnx")
    seen = []
    for node in onnx.load(str(path)).graph.node:
        if node.op_type not in seen:
            seen.append(node.op_type)
    return seen


def traceable(model: nn.Module, wrap: Callable, wrap_as_is: Callable):
    """What a task's export wrapper needs for `model`: (the module to trace, the module the file must
    match, or None when that is the traced one, the rewrite of the file, or None), or None when the
    model has a variant that no ONNX operator computes. `wrap` puts a model whose layers torch.nn can
    hold into the task's wrapper; `wrap_as_is` wraps the model with rnnkit's own layers."""
    try:
        return wrap(model), None, None
    except ValueError:  # a variant, which torch.nn has no class for
        form = lstm_operator_form(model)
        return None if form is None else (wrap(form[0]), wrap_as_is(model), form[1])


def refusal(model: nn.Module, task: str) -> UsageError:
    variant = next(m.spec.variant_name for m in model.modules() if getattr(m, "spec", None) and not m.spec.is_standard)
    return UsageError(
        f"ONNX export of a {task} covers the standard cells and the peephole and coupled LSTMs, not the variant "
        f"'{variant}'"
    )


def lstm_operator_form(model: torch.nn.Module):
    """For a model whose LSTMs are standard or full-gated peephole and/or coupled ones: (a copy whose
    LSTMs are all torch.nn's, a function that turns the exported file back into the model). ONNX's LSTM
    operator computes both variants exactly: its peephole input P adds p ⊙ c to the gates as Gers and
    Schmidhuber do, and with input_forget = 1 it makes f = 1 − i. rnnkit's coupled cell makes i = 1 − f
    instead, so its twin's input gate is the forget gate negated (σ(−a) = 1 − σ(a)) and the operator's
    forget gate comes out as rnnkit's. None when another variant is present."""
    twin, nodes = copy.deepcopy(model), []
    layers = [(path, module) for path, module in twin.named_modules() if getattr(module, "spec", None) is not None]
    for path, child in layers:  # in the order the forward pass meets them, as the exported graph does
        parent = twin.get_submodule(path.rpartition(".")[0])
        name, spec = path.rpartition(".")[2], child.spec
        if spec.is_standard:
            nodes += [(None, False)] * child.num_layers * (spec.kind == "lstm")
            continue
        if spec.kind != "lstm":
            return None
        if type(child) is not LSTM or spec.gates != "ifo":
            return None
        suffixes = ("", "_reverse") if child.bidirectional else ("",)
        torch_lstm = nn.LSTM(
            child.input_size,
            child.hidden_size,
            child.num_layers,
            bias=child.bias,
            bidirectional=child.bidirectional,
        )
        with torch.no_grad():
            for k in range(child.num_layers):
                peepholes = []
                for suffix in suffixes:
                    for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                        if not hasattr(child, f"{kind}_l{k}{suffix}"):
                            continue
                        weight = getattr(child, f"{kind}_l{k}{suffix}")
                        blocks = dict(zip(spec.blocks, weight.chunk(len(spec.blocks))))
                        if spec.coupled:
                            blocks["i"] = -blocks["f"]
                        getattr(torch_lstm, f"{kind}_l{k}{suffix}").copy_(torch.cat([blocks[g] for g in "ifgo"]))
                    if spec.peephole:
                        vectors = getattr(child, f"weight_ch_l{k}{suffix}").detach().chunk(len(spec.peephole_blocks))
                        p = dict(zip(spec.peephole_blocks, vectors))
                        p_i = -p["f"] if spec.coupled else p["i"]
                        peepholes.append(torch.cat([p_i, p["o"], p["f"]]).cpu().numpy())  # ONNX's order: i, o, f
                nodes.append((np.stack(peepholes) if peepholes else None, spec.coupled))  # (directions, 3H)
        setattr(parent, name, torch_lstm)
    return to_torch(twin), lambda data: with_lstm_variants(data, nodes)


def with_lstm_variants(data: bytes, nodes: list) -> bytes:
    """The exported file with each LSTM node given its peephole input and input_forget, in order."""
    onnx = require("onnx")
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(data)
    lstms = [node for node in model.graph.node if node.op_type == "LSTM"]
    if len(lstms) != len(nodes):
        raise UsageError(f"the exported graph has {len(lstms)} LSTM operators for {len(nodes)} layers")
    for index, (node, (peephole, coupled)) in enumerate(zip(lstms, nodes)):
        if peephole is not None:
            name = f"rnnkit_peephole_{index}"
            model.graph.initializer.append(numpy_helper.from_array(peephole.astype("float32"), name))
            node.input.extend([""] * (7 - len(node.input)) + [name])
        if coupled:
            node.attribute.append(helper.make_attribute("input_forget", 1))
    return model.SerializeToString()
