"""The hand-written BPTT against central finite differences (float64), element by element."""

import pytest
from reference_common import VARIANTS, Problem, make_layer, variant_id

from helpers import assert_close


def assert_gradients_match_differences(problem):
    ours = problem.gradients()
    differences = problem.finite_differences()
    assert set(ours) == set(differences)
    for name, gradient in differences.items():
        assert_close(ours[name], gradient, name=name, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_every_variant_matches_finite_differences(variant):
    kind, keywords = variant
    layer = make_layer(kind, keywords, input_size=3, hidden_size=2, bidirectional=True)
    assert_gradients_match_differences(Problem(layer, steps=3, batch=2, lengths=[3, 2]))


@pytest.mark.parametrize(
    "variant",
    [("rnn", {}), ("lstm", {"peephole": True, "coupled": True}), ("gru", {"reset": "before"})],
    ids=variant_id,
)
def test_two_layers_bidirectional_padded_match_finite_differences(variant):
    kind, keywords = variant
    layer = make_layer(kind, keywords, input_size=3, hidden_size=2, num_layers=2, bidirectional=True)
    assert_gradients_match_differences(Problem(layer, steps=3, batch=2, lengths=[1, 3]))


def test_without_bias_matches_finite_differences():
    layer = make_layer("lstm", {"peephole": True}, bias=False)
    problem = Problem(layer, steps=3, batch=2)
    assert set(problem.gradients()) == {"x", "hx0", "hx1", "weight_ih_l0", "weight_hh_l0", "weight_ch_l0"}
    assert_gradients_match_differences(problem)
