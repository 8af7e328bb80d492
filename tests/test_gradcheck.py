"""`rnnkit gradcheck` passes on the NumPy engine and fails when a gradient is wrong."""

import numpy as np
import pytest

from helpers import assert_close
from rnnkit import cli, gradcheck
from rnnkit.reference import cells


def test_gradcheck_command_passes(capsys):
    assert cli.main(["gradcheck"]) == 0
    table = capsys.readouterr().out
    checks = len(gradcheck.VARIANTS) * 2
    assert f"{checks} passed, 0 failed, 0 skipped" in table
    assert "FAIL" not in table


def scale_parameter_gradient(backward):
    def wrong(*args):
        *rest, grads = backward(*args)
        return (*rest, {**grads, "weight_hh": grads["weight_hh"] * 1.001})

    return wrong


def scale_input_gradient(backward):
    def wrong(*args):
        dx, *rest = backward(*args)
        return (dx * 1.001, *rest)

    return wrong


def scale_input_weight_gradient(backward):
    def wrong(*args):
        *rest, grads = backward(*args)
        return (*rest, {**grads, "weight_ih": grads["weight_ih"] * 1.001})

    return wrong


@pytest.mark.parametrize(
    "function, kinds, make_wrong",
    [
        ("gru", {"gru"}, scale_parameter_gradient),
        ("lstm", {"lstm"}, scale_input_gradient),
        ("minimal", {"mingru", "minlstm"}, scale_input_weight_gradient),
    ],
)
def test_a_wrong_gradient_fails_both_checks(function, kinds, make_wrong, monkeypatch, capsys):
    name = f"{function}_step_backward"
    monkeypatch.setattr(cells, name, make_wrong(getattr(cells, name)))
    assert gradcheck.run(seed=1) == 1
    prefixes = ("rnn ", "lstm ", "gru ", "mingru ", "minlstm ")
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith(prefixes)]
    assert {row[0] for row in rows} == {"rnn", "lstm", "gru", "mingru", "minlstm"}
    failed = {(row[0], "differences" if "differences" in row else "autograd") for row in rows if row[-1] == "FAIL"}
    assert failed == {(kind, check) for kind in kinds for check in ("differences", "autograd")}
    assert all(row[-1] == "pass" for row in rows if row[0] not in kinds)


def test_relative_errors():
    assert gradcheck.relative_error(np.array([1.0, -2.0]), np.array([1.0, -2.0])) == 0.0
    assert_close(
        gradcheck.relative_error(np.array([1.0, 4.0]), np.array([1.0, 3.0])),
        0.25,
        name="relative_error",
        rtol=1e-15,
        atol=0,
    )
    assert gradcheck.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert gradcheck.directional_error((2.0, 4.0), 1.0) == 0.25
