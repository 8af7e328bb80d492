"""`rnnkit train` with torch's default dtype set to float64, so that one process and several ranks can be
compared to 1e-6: run as a script, alone or under torchrun."""

import sys

import torch

torch.set_default_dtype(torch.float64)

from rnnkit.cli import main  # noqa: E402  (after the dtype, which the models take when they are built)

sys.exit(main(sys.argv[1:]))
