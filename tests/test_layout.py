"""The house's rules, checked on the source: imports go one way (no circles, lazy imports included),
task packages keep torch out of their lower floors, no task reaches into the training loop, one module
reads model weights, and each task package can be imported without torch."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnnkit.tasks import TASK_PACKAGES

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SOURCE / "rnnkit"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """The rnnkit modules a module imports anywhere in it (inside functions too), by their module names."""
    path = MODULES[name]
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def imported_packages(name: str) -> set[str]:
    """Every top-level package a module imports anywhere in it."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add((node.module or "").split(".")[0])
    return names


def test_the_import_graph_has_no_circles():
    """A package importing its own submodules is not a circle; anything else that comes back is."""
    edges = {
        name: {target for target in targets if not name.startswith(target + ".")} for name, targets in GRAPH.items()
    }
    state, circles = {}, []

    def visit(name, path):
        state[name] = "open"
        for target in sorted(edges[name]):
            if state.get(target) == "open":
                circles.append(path[path.index(target) :] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[name] = "done"

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert not circles, " ; ".join(" -> ".join(circle) for circle in circles)


def test_the_engines_depend_on_nothing_of_rnnkit_but_spec():
    for name, targets in GRAPH.items():
        for floor in ("rnnkit.nn", "rnnkit.reference"):
            if name == floor or name.startswith(floor + "."):
                outside = {t for t in targets if not (t == floor or t.startswith(floor + ".")) and t != "rnnkit.spec"}
                assert not outside, f"{name} imports {sorted(outside)}"


def test_no_task_reaches_into_the_training_loop_or_the_lifecycle():
    for name, targets in GRAPH.items():
        if name.startswith("rnnkit.tasks"):
            bad = {t for t in targets if t.startswith(("rnnkit.train", "rnnkit.runs", "rnnkit.cli"))}
            assert not bad, f"{name} imports {sorted(bad)}"


@pytest.mark.parametrize("task", sorted(TASK_PACKAGES))
def test_a_task_package_imports_downwards(task):
    """config, data and metrics: no torch and no engine; the engines: not the face above them."""
    package = TASK_PACKAGES[task]
    members = {name for name in MODULES if name.startswith(package + ".")}
    assert {f"{package}.{floor}" for floor in ("config", "data", "torch", "numpy")} <= members, sorted(members)
    for name in members:
        floor = name.rpartition(".")[2]
        upward = {t for t in GRAPH[name] if t == package or t in (f"{package}.torch", f"{package}.numpy")}
        assert not upward, f"{name} imports {sorted(upward)}"
        if floor != "torch":
            assert "torch" not in imported_packages(name), f"{name} imports torch"


def test_one_module_reads_model_weights():
    readers = [name for name in MODULES if "load_file" in MODULES[name].read_text(encoding="utf-8")]
    assert readers == ["rnnkit.rundir"], readers


def test_every_task_package_and_the_numpy_engine_import_without_torch():
    modules = [name for name in MODULES if name.startswith("rnnkit.tasks") and not name.endswith((".torch", "_layers"))]
    modules.append("rnnkit.tasks.numpy_layers")
    program = (
        "import importlib, sys\nsys.modules['torch'] = None\n"
        f"for name in {modules!r}:\n    importlib.import_module(name)\n"
        "loaded = [name for name in sys.modules if name.split('.')[0] == 'torch' and sys.modules[name]]\n"
        "assert not loaded, loaded\nprint(len(" + repr(modules) + "))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        env={**os.environ, "PYTHONPATH": str(SOURCE)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == len(modules) >= 3 * 5


def test_every_citation_of_equations_md_names_one_of_its_sections():
    """`EQUATIONS.md, "Section"` (or ("Section")) in the source and the README names a heading of the file."""
    import re

    top = SOURCE.parent
    headings = {
        line.lstrip("#").strip()
        for line in (top / "EQUATIONS.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }
    texts = [path.read_text(encoding="utf-8") for path in [*PACKAGE.rglob("*.py"), top / "README.md"]]
    cited = [
        " ".join(name.split())
        for text in texts
        for name in re.findall(r"EQUATIONS\.md,?\s*\(?[\"']([^\"']+)[\"']", text)
    ]
    assert len(cited) >= 15, cited
    assert not [name for name in cited if name not in headings], sorted(set(cited) - headings)


def test_the_readme_s_layout_names_everything_in_the_package_and_nothing_else():
    top = SOURCE.parent
    readme = (top / "README.md").read_text(encoding="utf-8")
    section = readme.split("## How the code is laid out", 1)[1].split("\n## ", 1)[0]
    tree = section.split("```", 2)[1]
    import re

    named = set(re.findall(r"[a-z_]+(?:\.py|/)", tree))
    present = {
        entry.name + ("/" if entry.is_dir() else "")
        for entry in PACKAGE.iterdir()
        if entry.name not in ("__init__.py", "__main__.py", "__pycache__")
    }
    present |= {
        entry.name + ("/" if entry.is_dir() else "")
        for entry in (PACKAGE / "tasks").iterdir()
        if entry.name not in ("__init__.py", "__pycache__")
    }
    assert not present - named, f"not in the README's tree: {sorted(present - named)}"
    task_files = {"config.py", "data.py", "metrics.py", "torch.py", "numpy.py", "__init__.py"}
    for package in TASK_PACKAGES.values():
        folder = PACKAGE.joinpath(*package.split(".")[1:])
        assert {path.name for path in folder.glob("*.py")} <= task_files, folder
