"""Units by a pattern of the text (rnnkit.analysis.patterns), on values made by hand."""

import numpy as np
import pytest

from rnnkit.analysis.patterns import MAX_PLACES, places_where_on, units_for_span


def test_the_units_on_inside_and_off_around_rank_by_their_margin():
    values = np.zeros((10, 4))
    values[3:6, 0] = 0.9  # on exactly over the span
    values[3:6, 1] = 0.6  # on too, by less
    values[2:6, 2] = 0.9  # on inside, but also just before it
    values[4:6, 3] = 0.9  # on over only part of it
    assert [unit for unit, _ in units_for_span(values, 3, 6, 0.5)] == [0, 1]
    assert units_for_span(values, 3, 6, 0.5)[0][1] == pytest.approx(0.9)
    assert [unit for unit, _ in units_for_span(values, 3, 6, 0.5, around=0)] == [0, 2, 1]
    assert units_for_span(values, 3, 6, 0.95) == []


def test_a_span_at_the_edge_has_only_one_side():
    values = np.zeros((5, 2))
    values[:2, 1] = 1.0
    assert [unit for unit, _ in units_for_span(values, 0, 2, 0.5)] == [1]


@pytest.mark.parametrize("start, end", [(-1, 2), (3, 3), (2, 6), (4, 2)])
def test_a_span_outside_the_text_is_refused(start, end):
    with pytest.raises(ValueError, match="not inside"):
        units_for_span(np.zeros((5, 2)), start, end, 0.5)


def test_places_are_the_maximal_runs_where_every_unit_is_on_longest_first():
    values = np.zeros((12, 3))
    values[[1, 2, 3, 7, 8, 10], 0] = 1.0
    values[[1, 2, 3, 8, 10, 11], 1] = 1.0
    assert places_where_on(values, [0, 1], 0.5) == [(1, 4), (8, 9), (10, 11)]
    assert places_where_on(values, [], 0.5) == []
    assert len(places_where_on(np.tile([[1.0], [0.0]], (200, 1)), [0], 0.5)) == MAX_PLACES
