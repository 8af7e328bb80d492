"""What every test shares: the comparison helper (it says which tensor differs, by how much, and
where) and the list of variants."""

from __future__ import annotations

import numpy as np

from rnnkit.spec import EVERY_VARIANT, CellSpec

# Every variant of EQUATIONS.md as (kind, constructor keywords), for parametrised tests of both engines.
VARIANTS = [(spec.kind, spec.keywords()) for spec in EVERY_VARIANT]


def variant_id(variant) -> str:
    kind, keywords = variant
    return CellSpec(kind, **keywords).variant_name.replace(" ", "-")


def _to_numpy(value):
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def assert_close(ours, ref, name: str = "tensor", rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Assert two arrays/tensors agree elementwise within |a - b| <= atol + rtol * |b|."""
    a, b = _to_numpy(ours), _to_numpy(ref)
    if a.shape != b.shape:
        raise AssertionError(f"{name}: shape {a.shape} != reference shape {b.shape}")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if not np.isfinite(a64).all():
        raise AssertionError(f"{name}: contains non-finite values at {np.argwhere(~np.isfinite(a64))[:3].tolist()}")
    error = np.abs(a64 - b64)
    bound = atol + rtol * np.abs(b64)
    if (error > bound).any():
        where = np.unravel_index(int(np.argmax(error - bound)), error.shape)
        raise AssertionError(
            f"{name}: max abs error {error.max():.3e} (at index {tuple(int(i) for i in where)}: "
            f"ours {a64[where]:.10g}, reference {b64[where]:.10g}); "
            f"{int((error > bound).sum())} of {error.size} elements outside atol={atol:g}, rtol={rtol:g}"
        )


def stop_at(trainer, step: int) -> None:
    """Make a trainer stop after `step` as Ctrl-C would (the signal handler only sets this flag)."""
    original = trainer.train_step

    def train_step():
        loss = original()
        if trainer.step == step:
            trainer.stop_requested = True
        return loss

    trainer.train_step = train_step


def checkpoint_of(model, directory, architecture):
    """(a stand-in run whose [model] is `architecture`, a checkpoint directory holding the model's
    weights): what the engines' model_function reads."""
    from types import SimpleNamespace

    from safetensors.torch import save_file

    from rnnkit.rundir import MODEL_WEIGHTS

    directory.mkdir(parents=True, exist_ok=True)
    save_file(
        {name: tensor.detach().clone().contiguous() for name, tensor in model.state_dict().items()},
        str(directory / MODEL_WEIGHTS),
    )
    return SimpleNamespace(config=SimpleNamespace(model=architecture)), directory
