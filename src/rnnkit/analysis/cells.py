"""Finding readable cells in a character model (Karpathy, Johnson and Fei-Fei 2015): which units track
quotes, bracket depth, the position in a line, comments, indentation or runs of capitals.

    indicators(text)                  named per-character signals computed from the text alone
    traced_values(model, ids, top)    every gate and state over the text (rnnkit.nn.trace), and the next tokens
    unit_signals(model, ids)          every unit's c, tanh(c) and h over the text
    rank_units(signals, indicators)   for each indicator, the units by |Pearson r| (best signal per unit)
    coloured_html(text, values)       the text with each character's background set by a unit's value

Position t of every array describes the model after it has read character t.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import torch

from rnnkit.nn.trace import trace

CHUNK = 2048  # characters per forward call; the state is carried between calls


def inside_quotes(text: str) -> np.ndarray:
    """1 from an opening double quote up to (not including) its closing one."""
    values, inside = np.zeros(len(text)), False
    for t, char in enumerate(text):
        if char == '"':
            inside = not inside
        values[t] = inside
    return values


def bracket_depth(text: str) -> np.ndarray:
    """How many (, [ or { are open (never below 0)."""
    values, depth = np.zeros(len(text)), 0
    for t, char in enumerate(text):
        depth = depth + 1 if char in "([{" else max(depth - 1, 0) if char in ")]}" else depth
        values[t] = depth
    return values


def position_in_line(text: str) -> np.ndarray:
    """Characters read since the last newline (0 on the newline itself)."""
    values, position = np.zeros(len(text)), 0
    for t, char in enumerate(text):
        position = 0 if char == "\n" else position + 1
        values[t] = position
    return values


def start_of_line(text: str) -> np.ndarray:
    """1 where the model has just read a newline, so the next character starts a line."""
    return np.array([char == "\n" for char in text], dtype=float)


def inside_comment(text: str) -> np.ndarray:
    """1 from a # to the end of its line (a # inside a string counts too)."""
    values, inside = np.zeros(len(text)), False
    for t, char in enumerate(text):
        inside = False if char == "\n" else inside or char == "#"
        values[t] = inside
    return values


def indentation(text: str) -> np.ndarray:
    """The number of spaces that start the current line."""
    values, depth, leading = np.zeros(len(text)), 0, True
    for t, char in enumerate(text):
        if char == "\n":
            depth, leading = 0, True
        elif char == " " and leading:
            depth += 1
        else:
            leading = False
        values[t] = depth
    return values


def uppercase_run(text: str) -> np.ndarray:
    """1 on capital letters next to another capital (a speaker's name, a constant's name)."""
    upper = [char.isupper() for char in text]
    return np.array(
        [upper[t] and ((t > 0 and upper[t - 1]) or (t + 1 < len(text) and upper[t + 1])) for t in range(len(text))],
        dtype=float,
    )


INDICATORS = {
    "inside quotes": inside_quotes,
    "bracket depth": bracket_depth,
    "position in line": position_in_line,
    "start of line": start_of_line,
    "inside a comment": inside_comment,
    "indentation": indentation,
    "uppercase run": uppercase_run,
}


def indicators(text: str) -> dict[str, np.ndarray]:
    return {name: function(text) for name, function in INDICATORS.items()}


def traced_values(model, ids: np.ndarray, top: int = 0):
    """Every value rnnkit.nn.trace records (gates and states) over the token ids read as one stream from a
    zero state: {trace key: {name: (T, H)}}, and with `top` > 0 each position's `top` most likely next
    tokens, (T, top) ids and (T, top) probabilities (else None, None). `model` is a language model with
    `hidden(ids, state)`, `scores(output)` and `initial_state(batch, device)`
    (rnnkit.tasks.language_model.torch.LanguageModel)."""
    device = next(model.parameters()).device
    state = model.initial_state(1, device)
    best_ids, best_probabilities = [], []
    with torch.no_grad(), trace(model) as recorded:
        for start in range(0, len(ids), CHUNK):
            chunk = torch.as_tensor(ids[start : start + CHUNK].astype(np.int64), device=device)[:, None]  # (T, 1)
            output, _, state = model.hidden(chunk, state)
            if top:
                probabilities = torch.softmax(model.scores(output)[:, 0].double(), dim=-1)  # (T, V)
                values, indices = probabilities.topk(min(top, probabilities.shape[-1]), dim=-1)
                best_ids.append(indices.cpu().numpy())
                best_probabilities.append(values.cpu().numpy())
    values = {
        key: {name: value[:, 0].cpu().numpy() for name, value in recorded[key].items()} for key in recorded.keys()
    }
    if not top:
        return values, None, None
    return values, np.concatenate(best_ids), np.concatenate(best_probabilities)


def unit_signals(model, ids: np.ndarray) -> dict[str, np.ndarray]:
    """Each recurrent layer's c, tanh(c) (LSTMs) and h over the token ids read as one stream from a zero
    state: {"<trace key>.<signal>": (T, H)} (see traced_values)."""
    signals = {}
    for key, values in traced_values(model, ids)[0].items():
        if "c" in values:
            signals[f"{key}.c"] = values["c"]
            signals[f"{key}.tanh(c)"] = np.tanh(values["c"])
        signals[f"{key}.h"] = values["h"]
    return signals


def correlations(values: np.ndarray, indicator: np.ndarray) -> np.ndarray:
    """Pearson r of every column of values (T, U) with the indicator (T,); 0 where either is constant."""
    centred = values - values.mean(axis=0)
    target = indicator - indicator.mean()
    scale = np.sqrt((centred**2).sum(axis=0) * (target**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (centred * target[:, None]).sum(axis=0) / scale
    return np.where(scale > 0, r, 0.0)


@dataclass(frozen=True)
class RankedUnit:
    layer: str  # the trace key, e.g. "rnn.l0"
    unit: int
    signal: str  # c, tanh(c) or h: the one that correlates best
    r: float


def rank_units(signals: dict[str, np.ndarray], indicators: dict[str, np.ndarray]) -> dict[str, list[RankedUnit]]:
    """For every indicator that varies, every unit ranked by the largest |r| of its signals, best first."""
    ranking = {}
    for name, indicator in indicators.items():
        if np.ptp(indicator) == 0:
            continue  # nothing to correlate with (no quotes in the text, say)
        best: dict[tuple[str, int], RankedUnit] = {}
        for key, values in signals.items():
            layer, signal = key.rsplit(".", 1)
            for unit, r in enumerate(correlations(values, indicator)):
                current = best.get((layer, unit))
                if current is None or abs(r) > abs(current.r):
                    best[(layer, unit)] = RankedUnit(layer, unit, signal, float(r))
        ranking[name] = sorted(best.values(), key=lambda ranked: -abs(ranked.r))
    return ranking


def colour(value: float) -> str:
    """A value in [-1, 1] as a CSS colour: blue for negative, red for positive, white at 0."""
    value = max(-1.0, min(1.0, value))
    fade = int(255 * (1 - abs(value)))
    return f"rgb(255,{fade},{fade})" if value > 0 else f"rgb({fade},{fade},255)"


def coloured_html(text: str, values: np.ndarray, title: str) -> str:
    """One block of text, each character on a background coloured by its value (scaled to [-1, 1])."""
    scale = float(np.abs(values).max()) or 1.0
    spans = []
    for char, value in zip(text, values):
        shown = "↵<br>" if char == "\n" else html.escape(char).replace(" ", "&nbsp;")
        spans.append(f'<span style="background:{colour(value / scale)}" title="{value:.3f}">{shown}</span>')
    return f'<h3>{html.escape(title)}</h3>\n<div class="text">{"".join(spans)}</div>\n'
