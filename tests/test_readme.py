"""The README's Python example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "README.md has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md example", "exec"), namespace)
    assert namespace["output"].shape == (3, 7, 20)
    assert set(namespace["grads"]) == {name for name, _ in namespace["lstm"].named_parameters()}
