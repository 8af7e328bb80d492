"""The progress line on stderr that training shows people (programs read metrics.jsonl: rnnkit.metrics_log).

On a terminal the progress line is rewritten in place (carriage return) a few times a second; when
stderr is a file or a pipe, a plain line is written at each logging step instead, so logs stay
readable.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

REFRESH_SECONDS = 0.2  # how often the terminal line is redrawn


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Silence:
    """Where the progress of a rank other than the leader goes: nowhere."""

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


class ProgressLine:
    def __init__(self, stream: TextIO | None = None, ranks: int = 1) -> None:
        self.stream = stream or sys.stderr  # looked up now: sys.stderr may have been replaced since import
        self.ranks = ranks  # processes training together (torchrun); the rate is theirs together
        self.is_terminal = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.last_draw = 0.0
        self.drawn = False  # a partial line is on the terminal

    def update(
        self,
        step: int,
        loss: float,
        lr: float,
        rate: float,
        unit: str,
        progress: float,
        eta_seconds: float | None,
        logging_step: bool,
    ) -> None:
        """Redraw the line; `rate` counts `unit` per second ("tokens", "sentences", ...)."""
        percent = f"{100 * progress:5.1f}%" if progress > 0 else "  -  "
        ranks = f" | {self.ranks} ranks" if self.ranks > 1 else ""
        line = (
            f"step {step:>7} | loss {loss:.4f} | lr {lr:.2e} | {rate:,.0f} {unit}/s{ranks} "
            f"| {percent} | ETA {format_duration(eta_seconds)}"
        )
        if self.is_terminal:
            now = time.monotonic()
            if logging_step or now - self.last_draw >= REFRESH_SECONDS:
                self.stream.write("\r" + line + "\x1b[K")
                self.stream.flush()
                self.last_draw, self.drawn = now, True
        elif logging_step:
            self.message(line)

    def message(self, text: str) -> None:
        """A line of its own, e.g. an evaluation result; the progress line is redrawn after it."""
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.drawn = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
