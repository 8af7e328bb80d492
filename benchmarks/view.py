"""Is the standard library's threading HTTP server enough for `rnnkit view`? The runs page's latency
alone and while model computations keep the viewer's two workers busy, measured in the same run.

    python benchmarks/view.py [DIR] [--requests 200] [--busy-seconds 20]

It serves DIR (default: runs) and the shipped models on a free loopback port in this process, asks
/api/runs REQUESTS times alone, then again while two client threads keep asking /api/inside of the
shipped model over texts of 1,000 characters (a new one each time), and prints the median and
95th-percentile latencies, the ratio busy / alone, and how many inside computations were answered per
second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import urllib.request

from rnnkit.data.text import read_text, resolve_corpus
from rnnkit.viewer.compute import MAX_TEXT
from rnnkit.viewer.server import make_server


def timed_runs(url: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        with urllib.request.urlopen(url + "/api/runs", timeout=60) as response:
            response.read()
        times.append(time.perf_counter() - start)
    return times


def keep_busy(url: str, text: str, stop: threading.Event, answered: list[int]) -> None:
    while not stop.is_set():
        start = len(answered) * 7 % (len(text) - MAX_TEXT)  # a new text each time: nothing is reused
        body = json.dumps({"id": "shipped/shakespeare", "text": text[start : start + MAX_TEXT]}).encode()
        request = urllib.request.Request(url + "/api/inside", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
        answered.append(1)


def percentile(values: list[float], share: float) -> float:
    return sorted(values)[min(len(values) - 1, int(share * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", default="runs")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--busy-seconds", type=float, default=20.0)
    args = parser.parse_args()
    server, _ = make_server([args.directory], "127.0.0.1", 0, "torch")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://localhost:{server.server_address[1]}"
    runs = len(json.loads(urllib.request.urlopen(url + "/api/runs").read())["runs"])
    alone = timed_runs(url, args.requests)
    text = read_text(resolve_corpus("tinyshakespeare"))[: 20 * MAX_TEXT]
    stop, answered = threading.Event(), []
    workers = [threading.Thread(target=keep_busy, args=(url, text, stop, answered)) for _ in range(2)]
    for worker in workers:
        worker.start()
    time.sleep(2.0)  # the model is loaded and both workers are computing
    started, count = time.perf_counter(), len(answered)
    busy = []
    while time.perf_counter() - started < args.busy_seconds:
        busy += timed_runs(url, 10)
    rate = (len(answered) - count) / (time.perf_counter() - started)
    stop.set()
    for worker in workers:
        worker.join()
    server.shutdown()
    print(f"runs listed: {runs}")
    print(
        f"/api/runs alone: median {statistics.median(alone) * 1e3:.1f} ms, p95 {percentile(alone, 0.95) * 1e3:.1f} ms"
    )
    print(
        f"/api/runs with two inside computations running: median {statistics.median(busy) * 1e3:.1f} ms, "
        f"p95 {percentile(busy, 0.95) * 1e3:.1f} ms ({len(busy)} requests)"
    )
    print(f"ratio busy / alone (median): {statistics.median(busy) / statistics.median(alone):.2f}")
    print(f"inside computations answered: {rate:.2f}/s (1,000 characters, the shipped 2x320 LSTM)")


if __name__ == "__main__":
    main()
