"""The viewer's HTTP server: the standard library's ThreadingHTTPServer, one thread per request, serving
the page (static/), JSON endpoints and the files of the directories it was given. It only reads.

    GET  /                         the page               GET  /api/runs             runs, experiments
    GET  /api/run?id=              one run in full        GET  /api/metrics?id=&since=N   records from the Nth
    GET  /api/samples?id=          samples.txt by step    GET  /api/diff?a=&b=       config differences
    GET  /api/experiment?id=       report, results, plots GET  /api/validation?id=   validation text (LM)
    GET  /api/eval?id=             `rnnkit eval`'s metrics of the run (classifier, tagger, ...)
    POST /api/inside, /api/pattern, /api/sample, /api/classify, /api/tag    (JSON bodies)
    GET  /files/ROOT/PATH          a PNG, JSON, Markdown or text file inside the ROOT-th directory

Safety: it binds 127.0.0.1 unless told otherwise, and a server bound elsewhere requires a random token
(given once in the URL, then kept in a cookie). Requests to a loopback server must name a loopback host
(a page elsewhere cannot reach it by DNS rebinding). Model computations run on a small pool of worker
threads with a time limit, so a slow one answers 503 with a message while the runs page stays quick.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from rnnkit.config import read_config_record
from rnnkit.errors import UsageError
from rnnkit.rundir import CONFIG
from rnnkit.viewer import catalog
from rnnkit.viewer.compute import Workbench

MAX_BODY = 64 * 1024  # bytes of a JSON request body
WORKERS = 2  # model computations at once
MAX_WAITING = 8  # computations queued before the server answers "busy"
TIME_LIMIT = 30.0  # seconds a computation may take before the request is answered with 503
RESCAN_SECONDS = 2.0  # how long a scan of the directories is reused
COOKIE = "rnnkit_view_token"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "[::1]", "::1"}


def static_directory() -> Path:
    return Path(str(resources.files("rnnkit.viewer") / "static"))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The host of a Host header, without its port: "localhost:8080" -> "localhost", "[::1]:80" -> "[::1]"."""
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0]


class Viewer:
    """What every request thread shares: the directories, the catalog (rescanned at most every
    RESCAN_SECONDS), the workbench and its pool, the token."""

    def __init__(self, directories: list[str], engine: str, token: str | None, time_limit: float = TIME_LIMIT):
        self.directories, self.token, self.time_limit = directories, token, time_limit
        self.workbench = Workbench(engine)
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="rnnkit-view")
        self.waiting = threading.BoundedSemaphore(MAX_WAITING)
        self.scan_lock = threading.Lock()
        self.scanned: tuple[float, catalog.Catalog] | None = None

    def catalog(self, fresh: bool = False) -> catalog.Catalog:
        with self.scan_lock:
            if fresh or self.scanned is None or time.monotonic() - self.scanned[0] > RESCAN_SECONDS:
                self.scanned = (time.monotonic(), catalog.scan(self.directories))
            return self.scanned[1]

    def compute(self, function, *arguments):
        """The function's result on the pool, within the time limit; ServiceUnavailable otherwise."""
        if not self.waiting.acquire(blocking=False):
            raise ServiceUnavailable("the viewer is busy with other computations; try again in a moment")
        try:
            future = self.pool.submit(function, *arguments)
        except BaseException:
            self.waiting.release()
            raise
        future.add_done_callback(lambda _: self.waiting.release())
        try:
            return future.result(timeout=self.time_limit)
        except FutureTimeout:
            raise ServiceUnavailable(
                f"this took longer than {self.time_limit:g} s and was given up (it finishes in the background); "
                "try a shorter text"
            ) from None

    def runs(self) -> dict:
        found = self.catalog(fresh=True)
        runs = [catalog.run_summary(entry) for entry in found.entries.values() if entry.kind == "run"]
        experiments = [
            {"id": entry.id, "shown": entry.shown, "name": entry.path.name, "runs": entry.runs}
            for entry in found.entries.values()
            if entry.kind == "experiment"
        ]
        return {
            "runs": runs,
            "experiments": experiments,
            "problems": found.problems,
            "directories": self.directories,
            "engine": self.workbench.engine,
        }


class ServiceUnavailable(Exception):
    pass


def query_value(query: dict, name: str) -> str:
    values = query.get(name)
    if not values:
        raise UsageError(f"the request needs ?{name}=")
    return values[0]


def since_value(query: dict) -> int:
    text = query.get("since", ["0"])[0]
    if not text.isdigit():
        raise UsageError(f"since: expected a count of records, got {text[:40]!r}")
    return int(text)


class Handler(BaseHTTPRequestHandler):
    server_version = "rnnkit-view"
    viewer: Viewer  # set on the subclass made for each server

    def log_message(self, format, *args) -> None:  # quiet: the terminal shows only the URL
        pass

    # ---- answering -------------------------------------------------------------------------------
    def send(self, status: int, body: bytes, kind: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header(
            "Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"
        )
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, value, status: int = 200) -> None:
        self.send(status, json.dumps(value, allow_nan=False, default=str).encode("utf-8"), "application/json")

    def fail(self, status: int, message: str) -> None:
        self.send_json({"error": " ".join(str(message).split())}, status)

    # ---- checks before anything else ---------------------------------------------------------------
    def allowed(self, query: dict) -> tuple[bool, dict]:
        """Whether the request may be answered (the host it names, the token), and cookies to set."""
        host = host_name(self.headers.get("Host") or "")
        if is_loopback(self.server.server_address[0]) and host not in LOOPBACK_NAMES:
            self.fail(HTTPStatus.FORBIDDEN, "this viewer answers only requests to localhost")
            return False, {}
        token = self.viewer.token
        if token is None:
            return True, {}
        given = query.get("token", [None])[0]
        if given is None:
            given = self.headers.get("X-Rnnkit-Token")
        if given is None:
            cookie = SimpleCookie(self.headers.get("Cookie") or "")
            given = cookie[COOKIE].value if COOKIE in cookie else None
        if given is None or not hmac.compare_digest(given.encode(), token.encode()):
            self.fail(HTTPStatus.UNAUTHORIZED, "this viewer needs its access token: open the URL it printed")
            return False, {}
        return True, {"Set-Cookie": f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"}

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self.answer(None)

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            return self.fail(HTTPStatus.LENGTH_REQUIRED, "a POST needs a Content-Length")
        if int(length) > MAX_BODY:
            self.close_connection = True
            return self.fail(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the request is over {MAX_BODY:,} bytes")
        raw = self.rfile.read(int(length))
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return self.fail(HTTPStatus.BAD_REQUEST, "the request body is not JSON")
        if not isinstance(body, dict):
            return self.fail(HTTPStatus.BAD_REQUEST, "the request body must be a JSON object")
        self.answer(body)

    def answer(self, body: dict | None) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        ok, headers = self.allowed(query)
        if not ok:
            return
        try:
            if parts.path.startswith("/files/"):
                return self.serve_file(parts.path[len("/files/") :])
            if parts.path in ("/", "/index.html") and body is None:
                page = (static_directory() / "index.html").read_bytes()
                return self.send(200, page, "text/html; charset=utf-8", headers)
            if parts.path.startswith("/static/") and body is None:
                return self.serve_static(parts.path[len("/static/") :])
            route = (POST_ROUTES if body is not None else GET_ROUTES).get(parts.path)
            if route is None:
                return self.fail(HTTPStatus.NOT_FOUND, f"no such address: {parts.path[:100]}")
            self.send_json(route(self, query, body))
        except UsageError as error:
            self.fail(HTTPStatus.BAD_REQUEST, str(error))
        except LookupError as error:
            self.fail(HTTPStatus.NOT_FOUND, str(error).strip("'\""))
        except PermissionError as error:
            self.fail(HTTPStatus.FORBIDDEN, str(error))
        except ServiceUnavailable as error:
            self.fail(HTTPStatus.SERVICE_UNAVAILABLE, str(error))
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as error:  # a failure inside one request never stops the server
            self.fail(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(error).__name__}: {error}")

    def serve_static(self, name: str) -> None:
        files = {path.name: path for path in static_directory().iterdir() if path.is_file()}
        kinds = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".txt": "text/plain"}
        if unquote(name) not in files:
            raise LookupError(f"no such file: {name[:100]}")
        path = files[unquote(name)]
        self.send(200, path.read_bytes(), kinds.get(path.suffix, "application/octet-stream") + "; charset=utf-8")

    def serve_file(self, rest: str) -> None:
        root, _, relative = rest.partition("/")
        path, kind = catalog.inside_root(self.viewer.catalog(), unquote(root), unquote(relative))
        with open(path, "rb") as file:
            data = file.read(50_000_000)
        self.send(200, data, kind)

    # ---- endpoints -------------------------------------------------------------------------------
    def entry(self, query: dict, kind: str | None = "run", name: str = "id") -> catalog.Entry:
        return self.viewer.catalog().get(query_value(query, name), kind)

    def body_entry(self, body: dict) -> catalog.Entry:
        if not isinstance(body.get("id"), str):
            raise UsageError("the request needs an id")
        return self.viewer.catalog().get(body["id"], "run")


def checkpoint_of(source: dict) -> str | None:
    which = source.get("checkpoint")
    if isinstance(which, list):
        which = which[0]
    if which is not None and not isinstance(which, str):
        raise UsageError("checkpoint: expected latest, best or a checkpoint's name")
    return which or None


GET_ROUTES = {
    "/api/runs": lambda h, q, b: h.viewer.runs(),
    "/api/run": lambda h, q, b: catalog.run_details(h.entry(q)),
    "/api/metrics": lambda h, q, b: catalog.metrics_since(h.entry(q), since_value(q)),
    "/api/samples": lambda h, q, b: {"samples": catalog.samples(h.entry(q))},
    "/api/diff": lambda h, q, b: {
        "differences": catalog.config_difference(
            read_config_record(h.entry(q, name="a").path / CONFIG),
            read_config_record(h.entry(q, name="b").path / CONFIG),
        )
    },
    "/api/experiment": lambda h, q, b: catalog.experiment_details(h.viewer.catalog(), h.entry(q, "experiment")),
    "/api/validation": lambda h, q, b: h.viewer.compute(h.viewer.workbench.validation_excerpt, h.entry(q)),
    "/api/eval": lambda h, q, b: h.viewer.compute(h.viewer.workbench.evaluate, h.entry(q), checkpoint_of(q)),
}
POST_ROUTES = {
    "/api/inside": lambda h, q, b: h.viewer.compute(
        h.viewer.workbench.inside, h.body_entry(b), checkpoint_of(b), b.get("text"), b.get("layer"), b.get("signal")
    ),
    "/api/pattern": lambda h, q, b: h.viewer.compute(h.viewer.workbench.pattern, h.body_entry(b), checkpoint_of(b), b),
    "/api/sample": lambda h, q, b: h.viewer.compute(h.viewer.workbench.sample, h.body_entry(b), checkpoint_of(b), b),
    "/api/classify": lambda h, q, b: h.viewer.compute(
        h.viewer.workbench.classify, h.body_entry(b), checkpoint_of(b), b.get("text")
    ),
    "/api/tag": lambda h, q, b: h.viewer.compute(
        h.viewer.workbench.tag, h.body_entry(b), checkpoint_of(b), b.get("text")
    ),
}


def make_server(directories: list[str], host: str, port: int, engine: str, time_limit: float = TIME_LIMIT):
    """A server bound to host:port (not yet serving) and its token (None on a loopback host)."""
    token = None if is_loopback(host) else secrets.token_urlsafe(18)
    viewer = Viewer(directories, engine, token, time_limit)
    handler = type("BoundHandler", (Handler,), {"viewer": viewer})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as error:
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    server.daemon_threads = True
    return server, token
