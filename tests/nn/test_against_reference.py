"""rnnkit.nn (autograd on the equations, or torch's kernel) against the NumPy engine's hand-written BPTT."""

import numpy as np
import pytest
import torch
from common import OUR_CLASSES, VARIANTS, random_batch, variant_id
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from helpers import assert_close
from rnnkit import reference

REFERENCE_CLASSES = {"rnn": reference.RNN, "lstm": reference.LSTM, "gru": reference.GRU}


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_every_variant_agrees_with_the_numpy_engine(variant):
    kind, kwargs = variant
    torch.manual_seed(0)
    ours = OUR_CLASSES[kind](3, 5, num_layers=2, bidirectional=True, **kwargs).double()
    ref = REFERENCE_CLASSES[kind](3, 5, num_layers=2, bidirectional=True, **kwargs)
    ref.load_state_dict({name: p.detach().numpy() for name, p in ours.state_dict().items()})
    x, lengths = random_batch()
    x.requires_grad_(True)

    out, state = ours(pack_padded_sequence(x, lengths, enforce_sorted=False))
    out, _ = pad_packed_sequence(out, total_length=x.shape[0])
    states = state if kind == "lstm" else (state,)
    rng = np.random.default_rng(1)
    d_output = rng.standard_normal(out.shape)
    d_states = [rng.standard_normal(s.shape) for s in states]
    loss = (out * torch.from_numpy(d_output)).sum() + sum(
        (s * torch.from_numpy(d)).sum() for s, d in zip(states, d_states)
    )
    loss.backward()

    ref_out, ref_state = ref.forward(x.detach().numpy(), lengths=lengths.tolist())
    d_input, _, grads = ref.backward(d_output, tuple(d_states) if kind == "lstm" else d_states[0])
    assert_close(out, ref_out, "output", rtol=1e-10, atol=1e-12)
    for i, (s, r) in enumerate(zip(states, ref_state if kind == "lstm" else (ref_state,))):
        assert_close(s, r, f"final state {i}", rtol=1e-10, atol=1e-12)
    assert_close(x.grad, d_input, "d_input", rtol=1e-9, atol=1e-11)
    for name, p in ours.named_parameters():
        assert_close(p.grad, grads[name], f"grad {name}", rtol=1e-9, atol=1e-11)
