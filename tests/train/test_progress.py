import io
import math

from rnnkit.train.progress import ProgressLine, format_duration


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_terminal_line_is_rewritten_in_place():
    stream = Terminal()
    progress = ProgressLine(stream)
    progress.update(10, 2.5, 1e-3, 12345.0, "tokens", 0.25, 90.0, logging_step=True)
    progress.message("step 10: validation nll 2.4")
    progress.close()
    text = stream.getvalue()
    assert text.startswith("\rstep      10 | loss 2.5000 | lr 1.00e-03 | 12,345 tokens/s |  25.0% | ETA 1:30")
    assert "\r\x1b[Kstep 10: validation nll 2.4\n" in text


def test_plain_lines_at_logging_steps_otherwise():
    stream = io.StringIO()
    progress = ProgressLine(stream)
    progress.update(9, 2.5, 1e-3, 100.0, "sentences", 0.0, None, logging_step=False)
    progress.update(10, 2.5, 1e-3, 100.0, "sentences", 0.0, None, logging_step=True)
    assert stream.getvalue().splitlines() == [
        "step      10 | loss 2.5000 | lr 1.00e-03 | 100 sentences/s |   -   | ETA ?"
    ]


def test_durations():
    assert format_duration(75) == "1:15" and format_duration(3725) == "1:02:05" and format_duration(math.inf) == "?"
