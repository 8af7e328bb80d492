"""`python -m rnnkit` is the same command as `rnnkit`."""

import sys

from rnnkit.cli import main

sys.exit(main())
