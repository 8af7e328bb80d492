"""Finding units by a pattern of the text, as LSTMVis does (Strobelt et al. 2018): select a span, and
ask which units are on inside it and off around it; then ask where else in the text that same set of
units is on together.

    units_for_span(values, start, end, threshold, around)   the units that fit the selection, best first
    places_where_on(values, units, threshold)                the other spans where all of them are on

`values` is one signal of one layer over a text, (T, H): position t is the model after reading token t.
A unit is on at a position when its value there is at least the threshold.
"""

from __future__ import annotations

import numpy as np

MAX_PLACES = 50  # spans returned by places_where_on, longest first


def check_span(values: np.ndarray, start: int, end: int) -> None:
    if not 0 <= start < end <= len(values):
        raise ValueError(f"the span [{start}, {end}) is not inside the text's {len(values)} tokens")


def units_for_span(
    values: np.ndarray, start: int, end: int, threshold: float, around: int = 1
) -> list[tuple[int, float]]:
    """The units that are on at every position of [start, end) and off at each of the `around` positions
    on either side of it (those that exist), ranked by their mean inside minus their mean around, best
    first: [(unit, that difference)]. A span with nothing around it ranks by the mean inside."""
    check_span(values, start, end)
    inside = values[start:end]  # (S, H)
    near = np.concatenate([values[max(start - around, 0) : start], values[end : end + around]])  # (N, H)
    chosen = (inside >= threshold).all(axis=0) & (near < threshold).all(axis=0)  # (H,)
    margin = inside.mean(axis=0) - (near.mean(axis=0) if len(near) else 0.0)  # (H,)
    units = np.flatnonzero(chosen)
    order = units[np.argsort(-margin[units], kind="stable")]
    return [(int(unit), float(margin[unit])) for unit in order]


def places_where_on(values: np.ndarray, units: list[int], threshold: float) -> list[tuple[int, int]]:
    """The maximal spans [start, end) in which every one of the units is on, longest first (then by
    position), at most MAX_PLACES of them."""
    if not units:
        return []
    on = (values[:, units] >= threshold).all(axis=1)  # (T,)
    edges = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    spans = sorted(zip(starts.tolist(), ends.tolist()), key=lambda span: (span[0] - span[1], span[0]))
    return spans[:MAX_PLACES]
