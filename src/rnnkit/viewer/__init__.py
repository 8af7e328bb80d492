"""`rnnkit view`: a local web viewer of runs, experiments and the shipped models. It only reads them.

    rnnkit view [DIR ...] [--port 8080] [--host 127.0.0.1] [--engine torch|numpy]
    rnnkit view RUN --export page.html

`catalog.py` finds and summarises runs and experiment folders (no torch), `compute.py` computes with a
run's model through the tasks' own code, `server.py` answers the page's requests, and `static/` is the
page itself: plain JavaScript with uPlot (MIT, its licence beside it) for the curves, nothing fetched
from elsewhere. `--export` writes one page with the data inlined, viewable without a server.
"""

from __future__ import annotations

import base64
import html
import json
import os
import sys
from pathlib import Path

from rnnkit.atomic import write_text_atomically
from rnnkit.errors import UsageError
from rnnkit.rundir import enclosing_run
from rnnkit.viewer import catalog
from rnnkit.viewer.server import make_server, static_directory

DEFAULT_PORT = 8080
SUMMARY = "a local web viewer: runs, curves, samples, what every unit does over text"


def add_arguments(parser) -> None:
    parser.add_argument(
        "directories",
        nargs="*",
        metavar="DIR",
        help="runs, folders of runs or experiment folders (default: runs); the shipped models are always listed",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"the port (default {DEFAULT_PORT}; 0: any free)"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default 127.0.0.1, this machine only); any other needs the "
        "printed access token",
    )
    parser.add_argument(
        "--engine", choices=("torch", "numpy"), default="torch", help="the engine the models run on (default torch)"
    )
    parser.add_argument(
        "--export", metavar="FILE", help="write one self-contained HTML page of the runs instead of serving"
    )


def run(args) -> int:
    directories = args.directories or ["runs"]
    if args.export:
        return export_page(directories, args.export)
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0 to 65535, got {args.port}")
    server, token = make_server(directories, args.host, args.port, args.engine)
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{'localhost' if shown in ('127.0.0.1', '[::1]') else shown}:{port}/"
    if token:
        url += f"?token={token}"
        print("rnnkit view: listening beyond this machine; the URL carries its access token", file=sys.stderr)
    print(f"rnnkit view: {url}  (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def export_page(directories: list[str], out: str) -> int:
    """One HTML file: the page, its script, styles and chart library, and the runs' data inlined (their
    summaries, configs, metrics and samples; experiments with their reports and PNGs)."""
    target = Path(out)
    inside = enclosing_run(Path(os.path.realpath(target)))
    if inside is not None or (target.parent / "config.json").is_file():
        raise UsageError(f"--export {out}: is inside a run directory; the viewer writes nothing there")
    found = catalog.scan(directories)
    data = {"runs": [], "experiments": [], "details": {}, "metrics": {}, "samples": {}, "experiment": {}}
    for entry in found.entries.values():
        if entry.kind == "run" and not entry.id.startswith("shipped/"):
            data["runs"].append(catalog.run_summary(entry))
            data["details"][entry.id] = catalog.run_details(entry)
            try:
                data["metrics"][entry.id] = catalog.metrics_since(entry, 0)
                data["samples"][entry.id] = {"samples": catalog.samples(entry)}
            except UsageError as error:
                data["details"][entry.id]["problems"].append(str(error))
        elif entry.kind == "experiment":
            data["experiments"].append(
                {"id": entry.id, "shown": entry.shown, "name": entry.path.name, "runs": entry.runs}
            )
            details = catalog.experiment_details(found, entry)
            details["plots"] = [inline_png(entry.path / Path(address).name) for address in details["plots"] if address]
            data["experiment"][entry.id] = details
    if not data["runs"] and not data["experiments"]:
        raise UsageError(f"{', '.join(directories)}: no run or experiment folder to export")
    data["problems"] = found.problems
    write_text_atomically(target, page_with(data))
    print(f"rnnkit view: wrote {target} ({len(data['runs'])} run(s), {len(data['experiments'])} experiment(s))")
    return 0


def inline_png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def page_with(data: dict) -> str:
    """index.html with its stylesheets and scripts inlined and the data in a JSON script element."""
    static = static_directory()
    page = (static / "index.html").read_text(encoding="utf-8")
    for name in ("uPlot.min.css", "viewer.css"):
        link = f'<link rel="stylesheet" href="/static/{name}">'
        page = page.replace(link, f"<style>{(static / name).read_text(encoding='utf-8')}</style>")
    for name in ("uPlot.iife.min.js", "viewer.js"):
        tag = f'<script src="/static/{name}"></script>'
        script = (static / name).read_text(encoding="utf-8").replace("</script", "<\\/script")
        page = page.replace(tag, f"<script>{script}</script>")
    licence = html.escape((static / "uPlot-LICENSE.txt").read_text(encoding="utf-8"))
    page = page.replace(
        '<a href="/static/uPlot-LICENSE.txt">text</a>',
        f"<details><summary>text</summary><pre>{licence}</pre></details>",
    )
    inlined = json.dumps(data, allow_nan=False, default=str).replace("</", "<\\/")
    marker = "<!-- exported data -->"
    return page.replace(marker, f'<script id="exported" type="application/json">{inlined}</script>')
