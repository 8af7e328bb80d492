"""matplotlib for the PNGs rnnkit writes (the `plots` extra): the experiments' figures and translation's
attention heatmaps."""

from __future__ import annotations

from rnnkit.errors import UsageError


def pyplot():
    """matplotlib's pyplot on the Agg backend (files, no screen); one line naming the package if missing."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError("the plots need matplotlib: pip install 'rnnkit[plots]' (or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
