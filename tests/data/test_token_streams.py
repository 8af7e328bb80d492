import numpy as np
import pytest

from rnnkit.data.streams import TokenStreams, minimum_tokens_for_split, split_train_validation
from rnnkit.errors import UsageError


def test_split_is_nanogpt_int_cut():
    tokens = list(range(1115394))
    train, validation = split_train_validation(tokens, 0.9)
    assert len(train) == int(1115394 * 0.9) == 1003854
    assert train[-1] + 1 == validation[0]


def test_minimum_tokens_for_split_is_the_smallest_that_fits():
    total = minimum_tokens_for_split(65, 0.9, 2)
    train, validation = split_train_validation(list(range(total)), 0.9)
    assert len(train) >= 65 and len(validation) >= 2
    train, validation = split_train_validation(list(range(total - 1)), 0.9)
    assert len(train) < 65 or len(validation) < 2


def test_streams_are_contiguous_and_targets_are_next_tokens():
    ids = np.arange(41)
    streams = TokenStreams(ids, batch_size=4, window=3)  # L = 10 per stream
    assert streams.stream_length == 10 and streams.windows_per_epoch == 4
    windows = [streams.next_window() for _ in range(4)]
    inputs = np.concatenate([window.inputs for window in windows])  # (L, B)
    targets = np.concatenate([window.targets for window in windows])
    np.testing.assert_array_equal(inputs[:, 1], np.arange(10, 20))  # stream 1 reads tokens 10..19 in order
    np.testing.assert_array_equal(targets, inputs + 1)
    assert [window.starts_epoch for window in windows] == [True, False, False, False]
    assert windows[-1].inputs.shape == (1, 4)  # the last window holds the remainder
    assert streams.epoch == 1 and streams.next_window().starts_epoch


def test_position_restores_exactly():
    ids = np.random.default_rng(0).integers(0, 50, 500)
    reader = TokenStreams(ids, batch_size=3, window=7)
    for _ in range(30):
        reader.next_window()
    position = reader.position()
    expected = [reader.next_window() for _ in range(10)]
    restored = TokenStreams(ids, batch_size=3, window=7)
    restored.restore(position)
    for window in expected:
        got = restored.next_window()
        np.testing.assert_array_equal(got.inputs, window.inputs)
        assert got.starts_epoch == window.starts_epoch
    assert restored.epochs_done == reader.epochs_done


def test_bad_position_and_too_few_tokens():
    reader = TokenStreams(np.arange(100), batch_size=2, window=10)
    with pytest.raises(UsageError, match="does not fit"):
        reader.restore({"epoch": 0, "window": 99})
    with pytest.raises(UsageError, match="at least 5"):
        TokenStreams(np.arange(3), batch_size=4, window=2)
