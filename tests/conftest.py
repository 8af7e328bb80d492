import sys
from pathlib import Path

# Tests import the shared helper as `from helpers import assert_close`.
sys.path.insert(0, str(Path(__file__).parent))
