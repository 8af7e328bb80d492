"""ONNX export (`rnnkit export RUN --format onnx`): a task's model, in evaluation mode, written with
torch's ONNX exporter and checked with onnxruntime against torch itself.

A task gives an `Exported`: the module to trace (whose recurrent layers are torch.nn's, so that the
exporter writes ONNX's own LSTM, GRU and RNN operators, the GRU with linear_before_reset = 1), the
names of its inputs and outputs, which of their axes are dynamic, and a function that makes inputs of
any batch size and length. The peephole and coupled LSTMs reach ONNX's LSTM operator through its
peephole input and input_forget (`lstm_operator_form`). Any other variant has no ONNX operator: its
layers become `LoopedLayer`s, an ONNX Loop over time whose body is one step of rnnkit's equations.
The file is traced at one size and verified at several others, so a size baked into the graph by
mistake is caught. The largest absolute difference over every output and size is printed.
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
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.atomic import write_bytes_atomically
from rnnkit.errors import UsageError
from rnnkit.nn.interop import to_torch
from rnnkit.nn.layers import LSTM, RecurrentLayer, reverse_padded
from rnnkit.nn.minimal import MinimalLayer
from rnnkit.nn.steps import cell_parameters, cell_step
from rnnkit.spec import CellSpec, layer_suffix

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
        for batch, length in CHECKED:
            inputs = exported.inputs(batch, length)
            expected = module(*inputs)
            expected = (expected,) if isinstance(expected, torch.Tensor) else expected
            feed = {name: value.cpu().numpy() for name, value in zip(exported.input_names, inputs) if name in used}
            for got, want in zip(session.run(None, feed), expected):
                largest = max(largest, float(abs(got - want.cpu().numpy()).max()) if want.numel() else 0.0)
    write_bytes_atomically(path, data)
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
    match, or None when that is the traced one, the rewrite of the file, or None). `wrap` puts a model
    whose layers torch.nn can hold into the task's wrapper; `wrap_as_is` wraps the model with rnnkit's
    own layers. A variant is written with ONNX's LSTM operator where that computes it exactly, else
    as a Loop (`LoopedLayer`). minGRU and minLSTM are refused."""
    if any(isinstance(module, MinimalLayer) for module in model.modules()):
        raise UsageError(
            "minGRU and minLSTM have no ONNX export (their scan has no ONNX operator); "
            "export a model of the rnn, lstm or gru cells"
        )
    try:
        return wrap(model), None, None
    except ValueError:  # a variant, which torch.nn has no class for
        form = lstm_operator_form(model)
        if form is not None:
            return wrap(form[0]), wrap_as_is(model), form[1]
        return wrap(looped(model)), wrap_as_is(model), None


def looped(model: nn.Module) -> nn.Module:
    """A copy of `model` whose variant layers are `LoopedLayer`s (standard ones stay for torch.nn)."""
    twin = copy.deepcopy(model).eval()
    for path, child in list(twin.named_modules()):
        if isinstance(child, RecurrentLayer) and not child.spec.is_standard:
            parent = twin.get_submodule(path.rpartition(".")[0])
            setattr(parent, path.rpartition(".")[2], LoopedLayer(child))
    return twin


def padded_output(layer: nn.Module, x: Tensor, lengths: Tensor, sorted_when_exported: bool = True) -> Tensor:
    """A recurrent layer's output (T, B, D*H) over padded x (T, B, I) of the given lengths (B,), zeros past
    each one: a `LoopedLayer` takes the lengths itself; any other layer gets a packed sequence, which the
    exporter turns into its operator's sequence lengths (in the order given, when the example traced is
    sorted by length)."""
    if isinstance(layer, LoopedLayer):
        return layer(x, lengths=lengths)[0]
    sort = not (sorted_when_exported and torch.onnx.is_in_onnx_export())
    output, _ = layer(pack_padded_sequence(x, lengths, enforce_sorted=not sort))
    return pad_packed_sequence(output, total_length=x.shape[0])[0]


class LoopedLayer(nn.Module):
    """A recurrent layer of any variant in a form the exporter writes as ONNX Loops, one per layer and
    direction: the input projection over the whole sequence, then a loop over time whose body is one
    step of rnnkit's equations (`cell_step`, traced once per variant). The layer's weights, as it computes
    with them in evaluation, are copied in. Called as the layer is, on padded input (T, B, I), with the
    sentences' lengths when they differ: past its end, a sequence's state stays and its output is zero."""

    def __init__(self, layer: RecurrentLayer) -> None:
        super().__init__()
        if layer.batch_first:
            raise UsageError("ONNX export of a batch-first variant layer is not supported")
        self.spec, self.num_layers, self.hidden_size = layer.spec, layer.num_layers, layer.hidden_size
        self.directions = 2 if layer.bidirectional else 1
        self.names = list(layer._flat_weights_names)
        for name, weight in zip(self.names, layer.eval().effective_weights()):
            self.register_buffer(name, weight.detach().clone())
        self.loop_key = (self.spec, layer.bias, self.spec.peephole)  # the loop itself is in LOOPS (see there)
        loop_over_time(*self.loop_key)

    def forward(self, input: Tensor, hx=None, lengths: Tensor | None = None):
        T, B = input.shape[:2]
        if lengths is None:
            mask = torch.ones(T, B, dtype=torch.bool, device=input.device)
        else:
            mask = torch.arange(T, device=input.device)[:, None] < lengths[None, :]  # (T, B)
        cells = self.num_layers * self.directions
        if hx is None:
            zeros = input.new_zeros(cells, B, self.hidden_size)
            hx = (zeros, zeros) if self.spec.has_cell_state else zeros
        state = tuple(hx) if self.spec.has_cell_state else (hx, hx)  # (h, c); a cell without c carries h twice
        weights = {name: getattr(self, name) for name in self.names}
        x, finals = input, []
        for layer in range(self.num_layers):
            outputs = []
            for reverse in (False, True)[: self.directions]:
                p = cell_parameters(weights, layer_suffix(layer, reverse))
                index = layer * self.directions + int(reverse)
                source = reverse_padded(x, lengths) if reverse else x
                xw = nn.functional.linear(source, p["weight_ih"], p["bias_ih"])  # (T, B, G*H)
                absent = xw.new_zeros(0)  # a tensor in the place of a weight the variant has not
                output, h, c = loop_over_time(*self.loop_key)(
                    xw,
                    mask,
                    state[0][index],
                    state[1][index],
                    p["weight_hh"],
                    absent if p["bias_hh"] is None else p["bias_hh"],
                    absent if p["weight_ch"] is None else p["weight_ch"],
                )
                output = output * mask[..., None].to(output.dtype)
                outputs.append(reverse_padded(output, lengths) if reverse else output)
                finals.append((h, c))
            x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
        h, c = (torch.stack(parts) for parts in zip(*finals))
        return x, ((h, c) if self.spec.has_cell_state else h)


LOOPS: dict = {}  # (spec, bias, peephole) -> its scripted loop; kept here, out of the modules, which are
# deep-copied (a scripted function cannot be)


def loop_over_time(spec: CellSpec, bias: bool, peephole: bool):
    """A TorchScript function (xw (T, B, G*H), mask (T, B), h, c, weight_hh, bias_hh, weight_ch) ->
    (outputs (T, B, H), h, c) whose loop the exporter writes as an ONNX Loop; its body is one step of
    `spec`, traced with the weights as inputs, so the one function serves every layer of the variant."""
    key = (spec, bias, peephole)
    if key in LOOPS:
        return LOOPS[key]

    def step(xw: Tensor, mask: Tensor, h: Tensor, c: Tensor, weight_hh: Tensor, bias_hh: Tensor, weight_ch: Tensor):
        p = {"weight_hh": weight_hh, "bias_hh": bias_hh if bias else None, "weight_ch": weight_ch if peephole else None}
        new = cell_step(spec, xw, (h, c) if spec.has_cell_state else (h,), p)
        new_c = new[1] if spec.has_cell_state else new[0]
        return torch.where(mask[:, None], new[0], h), torch.where(mask[:, None], new_c, c)

    H, G = 3, len(spec.blocks)
    example = (
        torch.randn(2, G * H),
        torch.tensor([True, False]),
        torch.randn(2, H),
        torch.randn(2, H),
        torch.randn(G * H, H),
        torch.randn(G * H) if bias else torch.zeros(0),
        torch.randn(len(spec.peephole_blocks) * H) if peephole else torch.zeros(0),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(step, example)

    def loop(
        xw: Tensor, mask: Tensor, h: Tensor, c: Tensor, weight_hh: Tensor, bias_hh: Tensor, weight_ch: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        outputs: list[Tensor] = []
        for t in range(xw.size(0)):
            h, c = traced(xw[t], mask[t], h, c, weight_hh, bias_hh, weight_ch)
            outputs.append(h)
        return torch.stack(outputs), h, c

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's advice about its own future
        LOOPS[key] = torch.jit.script(loop)
    return LOOPS[key]


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
