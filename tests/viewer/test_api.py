"""The viewer's JSON endpoints, on small runs made for the test: each answers what the run's own files and
the tasks' own code say, bad requests get a 4xx with a one-line message, and nothing is ever written."""

from __future__ import annotations

import hashlib
import json
import math
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import Served
from rnnkit.metrics_log import read_metrics
from rnnkit.rundir import RunDirectory
from rnnkit.viewer import catalog


def get(served, path: str, headers: dict | None = None):
    """(status, JSON body) of a GET."""
    request = urllib.request.Request(served.url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def post(served, path: str, body, raw: bytes | None = None):
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(served.url + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest() + str(path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_runs_lists_every_run_with_its_summary_and_the_shipped_model(served, viewed):
    status, data = get(served, "/api/runs")
    assert status == 200
    runs = {run["id"]: run for run in data["runs"]}
    assert {"0/char-lm", "0/sentiment", "0/pos", "0/gate-ablation-test/lstm", "shipped/shakespeare"} <= set(runs)
    lm = runs["0/char-lm"]
    records = read_metrics(viewed["lm"] / "metrics.jsonl")
    evals = [r for r in records if r["event"] == "eval"]
    assert lm["task"] == "language_model" and lm["variant"] == "lstm" and lm["state"] == "finished"
    assert lm["steps"] == 12 and lm["parameters"] == records[0]["parameters"]
    assert lm["best"]["metric"] == "nll" and lm["best"]["value"] == min(r["nll"] for r in evals)
    assert runs["0/pos"]["task"] == "tagger" and runs["0/sentiment"]["best"]["metric"] == "accuracy"
    assert runs["0/gate-ablation-test/lstm"]["experiment"] == "0/gate-ablation-test"
    assert [e["id"] for e in data["experiments"]] == ["0/gate-ablation-test"]
    assert runs["shipped/shakespeare"]["parameters"] == 1340865


def test_run_metrics_samples_and_diff(served, viewed):
    status, run = get(served, "/api/run?id=0/char-lm")
    assert status == 200 and run["config"]["model"]["hidden_size"] == 16 and run["latest"]["step"] == 12
    records = read_metrics(viewed["lm"] / "metrics.jsonl")
    status, metrics = get(served, "/api/metrics?id=0/char-lm&since=0")
    assert metrics["records"] == records and metrics["total"] == len(records)
    status, later = get(served, f"/api/metrics?id=0/char-lm&since={len(records) - 2}")
    assert later["records"] == records[-2:]
    status, samples = get(served, "/api/samples?id=0/char-lm")
    text = (viewed["lm"] / "samples.txt").read_text()
    assert [s["step"] for s in samples["samples"]] == [6, 12]
    assert all(s["text"] in text for s in samples["samples"]) and len(samples["samples"][0]["text"]) >= 40
    status, diff = get(served, "/api/diff?a=0/sentiment&b=0/gate-ablation-test/lstm")
    keys = {d["key"]: d for d in diff["differences"]}
    assert keys["train.max_steps"]["a"] == 20 and keys["train.max_steps"]["b"] == 5
    assert "model.hidden_size" not in keys


def test_experiment_shows_its_report_results_plots_and_runs(served):
    status, data = get(served, "/api/experiment?id=0/gate-ablation-test")
    assert status == 200 and data["report"].startswith("# gate ablation")
    assert data["results"]["experiment"] == "gate-ablation" and data["runs"] == ["0/gate-ablation-test/lstm"]
    assert data["plots"] == ["/files/0/gate-ablation-test/accuracy.png"]
    with urllib.request.urlopen(served.url + data["plots"][0]) as response:
        assert response.headers["Content-Type"] == "image/png" and response.read().startswith(b"\x89PNG")


def test_inside_gives_every_traced_signal_and_the_next_tokens(served, viewed):
    from rnnkit.analysis.cells import traced_values
    from rnnkit.runs import open_run
    from rnnkit.tasks.language_model.torch import load_run_model

    text = "the belly answer"
    status, data = post(served, "/api/inside", {"id": "0/char-lm", "text": text, "signal": "f"})
    assert status == 200, data
    assert "".join(data["pieces"]) == text and data["layers"] == {"rnn.l0": ["c", "f", "g", "h", "i", "o"]}
    model, _, vocabulary = load_run_model(open_run(viewed["lm"]))
    values, top_ids, top_p = traced_values(model, vocabulary.encode(list(text)), 5)
    np.testing.assert_allclose(data["values"], values["rnn.l0"]["f"], atol=1e-4)
    assert [[token for token, _ in row] for row in data["next"]] == [
        [vocabulary.tokens[i] for i in row] for row in top_ids
    ]
    assert all(0 < row[0][1] <= 1 and row[0][1] >= row[-1][1] for row in data["next"])
    status, h = post(served, "/api/inside", {"id": "0/char-lm", "text": text, "signal": "h"})
    assert np.allclose(h["values"], values["rnn.l0"]["h"], atol=1e-4) and h["values"] != data["values"]


def test_pattern_search_finds_the_units_on_inside_the_span(served):
    text = "the belly answer, the belly"
    status, inside = post(served, "/api/inside", {"id": "0/char-lm", "text": text, "signal": "i"})
    values = np.array(inside["values"])
    start, end = 4, 9
    # a threshold that one unit surely meets over the span: its smallest value there, with no margin asked
    best = int(np.argmax(values[start:end].min(axis=0)))
    threshold = float(values[start:end, best].min())
    request = {"id": "0/char-lm", "text": text, "signal": "i", "start": start, "end": end, "threshold": threshold}
    status, data = post(served, "/api/pattern", request | {"around": 0})
    assert status == 200, data
    assert best in [u["unit"] for u in data["units"]] and data["searched"]
    for place in data["places"]:
        assert (values[place["start"] : place["end"]][:, data["searched"]] >= threshold).all()
    assert any(place["start"] <= start and place["end"] >= end for place in data["places"])
    status, data = post(served, "/api/pattern", request)  # off on either side, as well
    for unit in [u["unit"] for u in data["units"]]:
        assert (values[start:end, unit] >= threshold).all()
        assert values[start - 1, unit] < threshold and values[end, unit] < threshold


def test_sampler_is_the_sample_command(served, viewed):
    from rnnkit.cli import main

    status, data = post(served, "/api/sample", {"id": "0/char-lm", "prime": "the", "length": 30, "seed": 3})
    assert status == 200, data
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["sample", str(viewed["lm"]), "--prime", "the", "--length", "30", "--seed", "3"])
    assert data["text"] == out.getvalue().rstrip("\n")
    status, bad = post(served, "/api/sample", {"id": "0/char-lm", "length": 30, "temperature": -1})
    assert status == 400 and "temperature" in bad["error"]


def test_classifier_label_probabilities_and_occlusion(served, viewed):
    from rnnkit.runs import open_run
    from rnnkit.tasks.classifier import probability_function
    from rnnkit.tasks.classifier.data import load_run_files

    status, data = post(served, "/api/classify", {"id": "0/sentiment", "text": "the film was wonderful"})
    assert status == 200, data
    run = open_run(viewed["classifier"])
    vocabulary, labels = load_run_files(run.path)
    probabilities = probability_function(run, run.directory.checkpoint(), vocabulary, labels, "torch")
    ids = vocabulary.encode(["the", "film", "was", "wonderful"])
    expected = probabilities([ids])[0]
    assert data["label"] == labels[int(np.argmax(expected))]
    assert math.isclose(sum(data["probabilities"].values()), 1.0, rel_tol=1e-6)
    occluded = ids.copy()
    occluded[3] = 1
    label = int(np.argmax(expected))
    assert math.isclose(data["contributions"][3], expected[label] - probabilities([occluded])[0][label], abs_tol=1e-6)
    assert data["method"].startswith("occlusion")


def test_tagger_tags_and_marginals(served):
    status, data = post(served, "/api/tag", {"id": "0/pos", "text": "the big dog runs ."})
    assert status == 200, data
    assert len(data["tags"]) == 5 and data["crf"] is True
    assert all(math.isclose(sum(row), 1.0, abs_tol=1e-3) for row in data["probabilities"])


def test_eval_is_the_eval_command(served, viewed):
    from rnnkit.runs import open_run

    status, data = get(served, "/api/eval?id=0/sentiment")
    run = open_run(viewed["classifier"])
    expected = run.task.evaluate(run, run.directory.checkpoint(), None)
    assert status == 200 and data["accuracy"] == expected["accuracy"] and data["confusion"] == expected["confusion"]
    status, tagger = get(served, "/api/eval?id=0/pos")
    assert "per_tag" in tagger and "confusions" in tagger


def test_validation_excerpt_is_the_runs_validation_text(served, viewed):
    status, data = get(served, "/api/validation?id=0/char-lm")
    corpus = (viewed["root"].parent / "data" / "tiny.txt").read_text()
    assert status == 200 and len(data["text"]) > 100 and data["text"] in corpus
    status, other = get(served, "/api/validation?id=0/sentiment")
    assert status == 400 and "no validation text" in other["error"]


@pytest.mark.parametrize(
    "path, body, status, fragment",
    [
        ("/api/inside", {"id": "0/char-lm", "text": ""}, 400, "empty"),
        ("/api/inside", {"id": "0/char-lm", "text": "€uro"}, 400, "not in the model's vocabulary"),
        ("/api/inside", {"id": "0/sentiment", "text": "a b"}, 400, "classifier run"),
        ("/api/inside", {"id": "0/nothing", "text": "a"}, 404, "no run"),
        ("/api/inside", {"text": "a"}, 400, "needs an id"),
        ("/api/inside", {"id": "0/char-lm", "text": "the", "signal": "q"}, 400, "has no 'q'"),
        ("/api/pattern", {"id": "0/char-lm", "text": "the", "start": 2, "end": 9, "threshold": 0}, 400, "span"),
        ("/api/pattern", {"id": "0/char-lm", "text": "the", "start": 0, "end": 1, "threshold": "x"}, 400, "number"),
        ("/api/sample", {"id": "0/char-lm", "length": 10**9}, 400, "length"),
        ("/api/sample", {"id": "0/char-lm", "length": 1.5}, 400, "integer"),
        ("/api/tag", {"id": "0/pos", "text": 5}, 400, "string"),
        ("/api/classify", {"id": "0/sentiment", "text": "x", "checkpoint": "step-9"}, 400, "--checkpoint"),
    ],
)
def test_a_bad_request_is_one_message(served, path, body, status, fragment):
    code, data = post(served, path, body)
    assert code == status and fragment in data["error"] and "\n" not in data["error"]


def test_nan_and_non_json_bodies(served):
    raw = b'{"id": "0/char-lm", "text": "the", "start": 0, "end": 1, "threshold": NaN}'
    assert post(served, "/api/pattern", None, raw) == (400, {"error": "threshold: expected a finite number"})
    code, data = post(served, "/api/inside", None, b"\xff\xfe not json")
    assert code == 400 and "not JSON" in data["error"]
    code, data = post(served, "/api/inside", None, b"[1, 2]")
    assert code == 400 and "object" in data["error"]
    assert get(served, "/api/metrics?id=0/char-lm&since=-1")[0] == 400
    assert get(served, "/api/metrics")[0] == 400
    assert get(served, "/api/nothing")[0] == 404


def test_the_viewer_writes_nothing_in_the_runs(viewed):
    before = snapshot(viewed["root"])
    serving = Served([viewed["root"]])
    try:
        for path in [
            "/api/runs",
            "/api/run?id=0/pos",
            "/api/eval?id=0/pos",
            "/api/samples?id=0/char-lm",
            "/api/experiment?id=0/gate-ablation-test",
            "/api/validation?id=0/char-lm",
        ]:
            assert get(serving, path)[0] == 200, path
        for path, body in [
            ("/api/inside", {"id": "0/char-lm", "text": "the"}),
            ("/api/sample", {"id": "0/char-lm", "length": 5}),
            ("/api/classify", {"id": "0/sentiment", "text": "good"}),
            ("/api/tag", {"id": "0/pos", "text": "the dog"}),
        ]:
            assert post(serving, path, body)[0] == 200, path
    finally:
        serving.stop()
    assert snapshot(viewed["root"]) == before


def test_states_training_interrupted_and_a_damaged_run(viewed, tmp_path):
    import shutil

    root = tmp_path / "runs"
    shutil.copytree(viewed["lm"], root / "live")
    shutil.copytree(viewed["lm"], root / "killed")
    shutil.copytree(viewed["lm"], root / "damaged")
    lines = (root / "killed" / "metrics.jsonl").read_text().splitlines(keepends=True)
    (root / "killed" / "metrics.jsonl").write_text(
        "".join(lines[:-1]) + '{"event": "train", "st'
    )  # no end, half a line
    damaged = root / "damaged" / "metrics.jsonl"
    damaged.write_text('{"event": "start"\n' + damaged.read_text())
    shutil.rmtree(root / "damaged" / "checkpoints")
    (root / "damaged" / "checkpoints").mkdir()
    lock = RunDirectory(root / "live").lock()  # what a training process holds
    try:
        serving = Served([root])
        try:
            runs = {run["id"]: run for run in get(serving, "/api/runs")[1]["runs"]}
            assert runs["0/live"]["state"] == "training"
            assert runs["0/killed"]["state"] == "interrupted" and "killed" in runs["0/killed"]["reason"]
            assert any("line 1: not a metrics record" in p for p in runs["0/damaged"]["problems"])
            assert "no checkpoint yet" in runs["0/damaged"]["problems"]
            code, data = post(serving, "/api/inside", {"id": "0/damaged", "text": "the"})
            assert code == 400 and "no checkpoint" in data["error"]
            assert get(serving, "/api/metrics?id=0/killed")[1]["total"] == len(lines) - 1
            assert get(serving, "/api/runs")[0] == 200  # still up
        finally:
            serving.stop()
    finally:
        lock.release()
    assert catalog.lock_holder(root / "live") is None


def test_concurrent_requests_do_not_mix(served):
    texts = [f"the belly {'answer ' * k}" for k in range(1, 7)]
    expected = {text: post(served, "/api/inside", {"id": "0/char-lm", "text": text})[1]["values"] for text in texts}
    answers, threads = {}, []

    def ask(text):
        answers[text] = post(served, "/api/inside", {"id": "0/char-lm", "text": text, "signal": "c"})[1]["values"]

    for text in texts + texts[:2]:  # MAX_WAITING at once
        threads.append(threading.Thread(target=ask, args=(text,)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert answers == expected


def test_a_slow_computation_answers_503_and_the_runs_page_stays_up(viewed):
    serving = Served([viewed["root"]], time_limit=1e-4)
    try:
        code, data = get(serving, "/api/eval?id=0/pos")
        assert code == 503 and "longer than" in data["error"]
        assert get(serving, "/api/runs")[0] == 200
    finally:
        serving.stop()


def test_the_numpy_engine_behind_the_viewer(viewed, served):
    serving = Served([viewed["root"]], engine="numpy")
    try:
        code, numpy_label = post(serving, "/api/classify", {"id": "0/sentiment", "text": "the film was awful"})
        torch_label = post(served, "/api/classify", {"id": "0/sentiment", "text": "the film was awful"})[1]
        assert code == 200 and numpy_label["engine"] == "numpy" and numpy_label["label"] == torch_label["label"]
        for name, p in torch_label["probabilities"].items():
            assert math.isclose(numpy_label["probabilities"][name], p, abs_tol=1e-5)
        numpy_tags = post(serving, "/api/tag", {"id": "0/pos", "text": "a red cat sees the house ."})[1]
        torch_tags = post(served, "/api/tag", {"id": "0/pos", "text": "a red cat sees the house ."})[1]
        assert numpy_tags["tags"] == torch_tags["tags"]
        np.testing.assert_allclose(numpy_tags["probabilities"], torch_tags["probabilities"], atol=1e-3)
        code, sample = post(serving, "/api/sample", {"id": "0/char-lm", "length": 20, "seed": 1})
        assert code == 200 and sample["engine"] == "numpy" and len(sample["text"]) >= 20
        code, refused = post(serving, "/api/inside", {"id": "0/char-lm", "text": "the"})
        assert code == 400 and "torch engine" in refused["error"]
    finally:
        serving.stop()


def test_export_writes_one_page_with_the_data_inlined(viewed, tmp_path, capsys):
    from rnnkit.cli import main

    page = tmp_path / "page.html"
    assert main(["view", str(viewed["root"]), "--export", str(page)]) == 0
    text = page.read_text()
    assert "/static/" not in text and 'src="http' not in text and 'href="http' not in text
    data = json.loads(text.split('<script id="exported" type="application/json">', 1)[1].split("</script>", 1)[0])
    assert {run["id"] for run in data["runs"]} >= {"0/char-lm", "0/sentiment", "0/pos"}
    assert data["metrics"]["0/char-lm"]["records"] == read_metrics(viewed["lm"] / "metrics.jsonl")
    assert data["experiment"]["0/gate-ablation-test"]["plots"][0].startswith("data:image/png;base64,")
    inside = viewed["lm"] / "page.html"
    assert main(["view", str(viewed["root"]), "--export", str(inside)]) == 2
    assert "inside a run directory" in capsys.readouterr().err and not inside.exists()
