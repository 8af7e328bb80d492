"""What the viewer lists, read from the directories it was given and never written: runs, experiment
folders and the shipped models, each summarised from its own files (config.json, metrics.jsonl,
samples.txt, the checkpoints' trainer.json, an experiment's results.json, report.md and PNGs).

Each entry has an id, its place under the root it was found in ("0/demo", "1/gate-ablation-x/lstm",
"shipped/shakespeare"). Requests name entries by id, so no path from a request ever reaches the file
system, except through `inside_root`, which serves a file of a root and refuses anything that leaves it.

A run is `training` while a process holds its lock (RUN/lock, flock). The lock is never taken here,
since taking it even for a moment could make a trainer that starts then fail: the holder is read from
/proc/locks, or, where there is no /proc, from the pid the lock file holds. A run that is not training
is `finished` when its last session ended (an `end` record), `interrupted` when it was stopped or killed,
and `not started` when it has no record yet. This module needs no torch.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from rnnkit.config import read_config_record
from rnnkit.errors import UsageError
from rnnkit.metrics_log import read_metrics
from rnnkit.pretrained import shipped_models
from rnnkit.rundir import (
    CHECKPOINT_NAME,
    CHECKPOINTS,
    CONFIG,
    LOCK,
    TRAINER_STATE,
    RunDirectory,
    process_running,
    read_trainer_state,
)
from rnnkit.runs import open_run
from rnnkit.tasks import best_metric_of

RESULTS, REPORT = "results.json", "report.md"
MAX_DEPTH = 4  # how deep below a root runs and experiments are looked for
MAX_DIRECTORIES = 5000  # directories visited per scan, at most
MAX_REPORT_BYTES = 500_000  # of a report.md or results.json shown
MAX_SAMPLES_BYTES = 2_000_000  # of samples.txt read (its end, the newest samples)
SERVED_SUFFIXES = {
    ".png": "image/png",
    ".json": "application/json",
    ".md": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".jsonl": "text/plain; charset=utf-8",
}
SAMPLE_HEADER = re.compile(r"^=== step (\d+) ===$", re.MULTILINE)


@dataclass
class Entry:
    """A run or an experiment folder found under a root."""

    id: str
    kind: str  # "run" or "experiment"
    path: Path  # resolved
    shown: str  # the path as the user gave it, joined with the entry's place under it
    experiment: str | None = None  # the id of the experiment folder the run is in
    runs: list[str] = field(default_factory=list)  # an experiment's runs, by id


@dataclass
class Catalog:
    roots: list[Path]  # resolved
    entries: dict[str, Entry]
    problems: list[str]  # directories that could not be read, roots that do not exist

    def get(self, entry_id: str, kind: str | None = None) -> Entry:
        entry = self.entries.get(entry_id)
        if entry is None or (kind is not None and entry.kind != kind):
            raise LookupError(f"no {kind or 'entry'} with id {entry_id!r}")
        return entry


def is_run(path: Path) -> bool:
    return (path / CONFIG).is_file() and (path / CHECKPOINTS).is_dir()


def is_experiment(path: Path) -> bool:
    return (path / RESULTS).is_file() or (path / REPORT).is_file()


def scan(given: list[str | Path]) -> Catalog:
    """Every run and experiment folder under the given directories (each a run, a folder of runs or an
    experiment's folder), then the shipped models. Symbolic links are not followed below a root."""
    roots, entries, problems = [], {}, []
    budget = [MAX_DIRECTORIES]
    for index, name in enumerate(given):
        root = Path(os.path.realpath(name))
        roots.append(root)
        if not root.is_dir():
            problems.append(f"{name}: no such directory")
            continue
        walk(root, root, str(name), str(index), 0, None, entries, problems, budget)
    for name, path in shipped_models().items():
        entries[f"shipped/{name}"] = Entry(f"shipped/{name}", "run", path, f"{name} (shipped)")
    return Catalog(roots, entries, problems)


def walk(root, path, shown, entry_id, depth, experiment, entries, problems, budget) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        if budget[0] == -1:
            problems.append(f"stopped looking after {MAX_DIRECTORIES} directories")
        return
    if is_run(path):
        entries[entry_id] = Entry(entry_id, "run", path, shown, experiment)
        if experiment is not None:
            entries[experiment].runs.append(entry_id)
        return
    if is_experiment(path):
        entries[entry_id] = Entry(entry_id, "experiment", path, shown)
        experiment = entry_id
    if depth >= MAX_DEPTH:
        return
    try:
        children = sorted(os.scandir(path), key=lambda child: child.name)
    except OSError as error:
        problems.append(f"{shown}: {error.strerror}")
        return
    for child in children:
        if child.name.startswith(".") or child.is_symlink() or not child.is_dir(follow_symlinks=False):
            continue
        walk(
            root,
            Path(child.path),
            f"{shown}/{child.name}",
            f"{entry_id}/{child.name}",
            depth + 1,
            experiment,
            entries,
            problems,
            budget,
        )


# ---- a run's summary ------------------------------------------------------------------------------------
def lock_holder(path: Path) -> int | None:
    """The id of the process that holds the run's lock now, else None; read without taking the lock."""
    lock = path / LOCK
    try:
        status = os.stat(lock)
        text = lock.read_text(encoding="ascii", errors="replace")[:32].strip()
    except OSError:
        return None
    pid = int(text) if text.isdigit() else None
    try:
        table = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return pid if pid is not None and process_running(pid) else None
    device = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
    for line in table.splitlines():
        fields = line.split()  # "1: FLOCK  ADVISORY  WRITE 4321 fd:01:1234567 0 EOF"; a waiter has "->" too
        if len(fields) >= 6 and fields[1] == "FLOCK" and "->" not in fields and fields[5] == device:
            return int(fields[4]) if fields[4].isdigit() else pid
    return None


def run_state(path: Path, records: list[dict]) -> tuple[str, str | None]:
    """(state, why): training, finished, interrupted or not started, with the end's reason."""
    if lock_holder(path) is not None:
        return "training", None
    sessions = [record for record in records if record["event"] in ("start", "resume", "end")]
    if not sessions:
        return "not started", None
    last = sessions[-1]
    if last["event"] != "end":
        return "interrupted", "the process stopped without an end record (killed)"
    if last.get("reason") == "interrupted":
        return "interrupted", "stopped by a signal"
    return "finished", last.get("reason")


def flat(record: dict, prefix: str = "") -> dict[str, object]:
    """A config record as {"section.key": value}."""
    values = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        values |= flat(value, name + ".") if isinstance(value, dict) else {name: value}
    return values


def config_difference(a: dict, b: dict) -> list[dict]:
    """The keys whose values differ between two config records (a key one lacks shows as null)."""
    first, second = flat(a), flat(b)
    return [
        {"key": key, "a": first.get(key), "b": second.get(key)}
        for key in sorted(first.keys() | second.keys())
        if first.get(key) != second.get(key)
    ]


def best_of(records: list[dict], metric: str, higher: bool) -> dict | None:
    values = [
        (record[metric], record["step"])
        for record in records
        if record["event"] == "eval" and isinstance(record.get(metric), (int, float))
    ]
    if not values:
        return None
    value, step = (max if higher else min)(values, key=lambda pair: pair[0])
    return {"value": value, "step": step}


def checkpoint_names(path: Path) -> list[str]:
    try:
        return sorted(
            entry.name
            for entry in (path / CHECKPOINTS).iterdir()
            if CHECKPOINT_NAME.fullmatch(entry.name) and entry.is_dir()
        )
    except OSError:
        return []


def run_summary(entry: Entry) -> dict:
    """What the runs table shows of a run. A part that cannot be read is a message in `problems`."""
    summary = {
        "id": entry.id,
        "shown": entry.shown,
        "experiment": entry.experiment,
        "shipped": entry.id.startswith("shipped/"),
        "problems": [],
    }
    problems = summary["problems"]
    try:
        run = open_run(entry.path)
        metric, higher = best_metric_of(run.task.name)
        model = run.config.model
        summary |= {
            "task": run.task.name,
            "cell": model.cell,
            "variant": model.cell_spec().variant_name,
            "layers": model.num_layers,
            "hidden_size": model.hidden_size,
        }
    except (UsageError, AttributeError, ValueError) as error:
        problems.append(str(error))
        return summary | {"task": None, "state": "unreadable"}
    try:
        records = read_metrics(entry.path / "metrics.jsonl")
    except UsageError as error:
        problems.append(str(error))
        records = []
    starts = [r for r in records if r["event"] in ("start", "resume")]
    trains = [r for r in records if r["event"] == "train"]
    summary["preset"] = next((r["preset"] for r in starts if r.get("preset")), None)
    summary["parameters"] = starts[-1]["parameters"] if starts else None
    summary["steps"] = max((r["step"] for r in records if isinstance(r.get("step"), int)), default=0)
    summary["epochs"] = trains[-1]["epoch"] if trains else None
    summary["elapsed"] = records[-1]["elapsed"] if records else 0.0
    summary["state"], summary["reason"] = run_state(entry.path, records)
    summary["best"] = {"metric": metric, "higher_is_better": higher, **(best_of(records, metric, higher) or {})}
    summary["checkpoints"] = checkpoint_names(entry.path)
    summary["samples"] = (entry.path / "samples.txt").is_file()
    if not summary["checkpoints"]:
        problems.append("no checkpoint yet")
    if entry.id.startswith("shipped/"):
        summary |= shipped_card(entry.path)
    return summary


def shipped_card(path: Path) -> dict:
    """A shipped model's card: its parameters, steps and validation nll (it has no metrics.jsonl)."""
    try:
        card = json.loads((path / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {
        "parameters": card.get("parameters"),
        "steps": card.get("steps"),
        "state": "finished",
        "best": {"metric": "nll", "higher_is_better": False, "value": card.get("validation_nll")},
        "description": card.get("description"),
    }


def run_details(entry: Entry) -> dict:
    """A run's summary, its whole config, its checkpoints' steps and the latest one's trainer state."""
    details = run_summary(entry)
    try:
        details["config"] = read_config_record(entry.path / CONFIG)
    except UsageError as error:
        details["config"] = None
        details["problems"].append(str(error))
    directory = RunDirectory(entry.path)
    try:
        latest = directory.pointed_checkpoint("latest")
        if latest is not None and (latest / TRAINER_STATE).is_file():  # a shipped model keeps only its weights
            state = read_trainer_state(latest)
            details["latest"] = {
                "name": latest.name,
                "step": state["step"],
                "best": state.get("best"),
                "world_size": state.get("world_size", 1),
            }
    except UsageError as error:
        details["problems"].append(str(error))
    return details


def metrics_since(entry: Entry, since: int) -> dict:
    """The run's metrics records from the `since`-th on, and how many there are: what a page that already
    holds `since` of them polls for."""
    records = read_metrics(entry.path / "metrics.jsonl")
    return {"records": records[max(since, 0) :], "total": len(records)}


def samples(entry: Entry) -> list[dict]:
    """samples.txt as [{"step", "text"}], oldest first (its last MAX_SAMPLES_BYTES)."""
    path = entry.path / "samples.txt"
    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(size - MAX_SAMPLES_BYTES, 0))
            text = file.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    except OSError as error:
        raise UsageError(f"{path}: {error.strerror}") from None
    headers = list(SAMPLE_HEADER.finditer(text))
    ends = [header.start() for header in headers[1:]] + [len(text)]
    return [
        {"step": int(header.group(1)), "text": text[header.end() + 1 : end].rstrip("\n")}
        for header, end in zip(headers, ends)
    ]


def bounded_text(path: Path) -> str | None:
    try:
        with open(path, "rb") as file:
            return file.read(MAX_REPORT_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None


def experiment_details(catalog: Catalog, entry: Entry) -> dict:
    """An experiment folder: its report (Markdown), results.json, the PNGs beside them and its runs."""
    results_text = bounded_text(entry.path / RESULTS)
    try:
        results = json.loads(results_text) if results_text is not None else None
        problem = None
    except ValueError as error:
        results, problem = None, f"{RESULTS}: not JSON ({error})"
    try:
        plots = sorted(
            child.name
            for child in entry.path.iterdir()
            if child.suffix == ".png" and not child.is_symlink() and child.is_file()
        )
    except OSError:
        plots = []
    return {
        "id": entry.id,
        "shown": entry.shown,
        "name": entry.path.name,
        "report": bounded_text(entry.path / REPORT),
        "results": results,
        "problems": [problem] if problem else [],
        "plots": [file_address(catalog, entry.path / name) for name in plots],
        "runs": entry.runs,
    }


def file_address(catalog: Catalog, path: Path) -> str | None:
    """The /files/ address of a file inside a root."""
    for index, root in enumerate(catalog.roots):
        if path == root or root in path.parents:
            return f"/files/{index}/{path.relative_to(root).as_posix()}"
    return None


def inside_root(catalog: Catalog, root_index: str, relative: str) -> tuple[Path, str]:
    """The file that a /files/ROOT/PATH request names, with its content type. LookupError (404) for no such
    file, PermissionError (403) for anything that leaves the root: a '..' or '.' part (after URL
    decoding), an absolute part, a symbolic link that resolves outside it, or a file of a kind not served."""
    if not root_index.isdigit() or int(root_index) >= len(catalog.roots):
        raise LookupError("no such root")
    root = catalog.roots[int(root_index)]
    parts = relative.split("/")
    if any(part in ("", ".", "..") or "\\" in part or "\0" in part for part in parts):
        raise PermissionError("the path leaves the directory")
    path = Path(os.path.realpath(root.joinpath(*parts)))
    if root not in path.parents:
        raise PermissionError("the path leaves the directory")
    kind = SERVED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise PermissionError("not a kind of file the viewer serves")
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise LookupError("not a file")
    except OSError:
        raise LookupError("no such file") from None
    return path, kind
