"""Handing rnnkit.nn modules to tools made for torch.nn's own classes.

Some torch tools select modules by their exact class: `torch.ao.quantization.quantize_dynamic`
(`type(m) in {nn.LSTM, ...}`, and `from_float` insists on the exact torch class) is one. They leave an
rnnkit layer in float as they leave any module they do not know, so:

- `to_torch(model)` returns a copy of `model` with every standard-cell rnnkit layer and cell replaced
  by its torch.nn twin holding the same tensors; a variant has no torch.nn twin and is an error.
- A quantization config attached to an rnnkit module (`qconfig`, which those tools set on the
  modules a user asked for) warns that the module will stay in float and names `to_torch`.
"""

from __future__ import annotations

import copy
import warnings

from torch import nn


class HasTorchTwin:
    """Mixin of the rnnkit layers and cells: each names the torch.nn class it stands in for, and
    attaching a qconfig warns that no quantization tool will convert it."""

    _torch_class: type[nn.Module]

    def __setattr__(self, name, value) -> None:
        if name == "qconfig" and value is not None:
            warnings.warn(
                f"{self._torch_class.__name__}: rnnkit modules have no quantized version, so quantization leaves "
                "this one "
                "in float; for a standard cell, quantize rnnkit.nn.to_torch(model) instead",
                stacklevel=2,
            )
        super().__setattr__(name, value)


def to_torch(module: nn.Module) -> nn.Module:
    """A copy of `module` in which every rnnkit.nn layer and cell is its torch.nn twin (same tensors,
    bit-identical outputs). Raises ValueError for a variant, which torch.nn cannot compute."""
    module = copy.deepcopy(module)
    twin = _twin(module, "")
    if twin is not None:
        return twin
    for path, parent in list(module.named_modules()):
        for name, child in list(parent.named_children()):
            twin = _twin(child, f"{path}.{name}" if path else name)
            if twin is not None:
                setattr(parent, name, twin)
    return module


def _twin(module: nn.Module, path: str) -> nn.Module | None:
    if not isinstance(module, HasTorchTwin):
        return None
    spec = module.spec
    if not spec.is_standard:
        raise ValueError(
            f"to_torch: {f'submodule {path!r}' if path else 'the module'} is the variant '{spec.variant_name}', "
            "which torch.nn has no class for"
        )
    weight = module.weight_ih_l0 if hasattr(module, "weight_ih_l0") else module.weight_ih
    factory = {"device": weight.device, "dtype": weight.dtype}
    if isinstance(module, nn.RNNBase):
        options = {
            "num_layers": module.num_layers,
            "bias": module.bias,
            "batch_first": module.batch_first,
            "dropout": module.dropout,
            "bidirectional": module.bidirectional,
        }
    else:
        options = {"bias": module.bias}
    if spec.kind == "rnn":
        options["nonlinearity"] = spec.nonlinearity
    twin = module._torch_class(module.input_size, module.hidden_size, **options, **factory)
    twin.load_state_dict(module.state_dict(), strict=True)
    twin.train(module.training)
    return twin
