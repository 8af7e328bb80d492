"""The viewer serves only what is inside the directories it was given, binds loopback unless told
otherwise, then requires its token, and refuses over-long texts and bodies."""

from __future__ import annotations

import http.client
import json
import os

import pytest

from conftest import Served
from rnnkit.cli import build_parser
from rnnkit.viewer.compute import MAX_TEXT
from rnnkit.viewer.server import MAX_BODY


def raw_request(served, path: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    """(status, body) of a request sent byte for byte as given (no client-side normalising of the path)."""
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    sent = {"Host": f"localhost:{served.port}", **(headers or {})}
    for name, value in sent.items():
        connection.putheader(name, value)
    if body is not None:
        connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data, response


@pytest.fixture(scope="module")
def outside(tmp_path_factory, viewed):
    """A secret file outside the viewed directory, and links to it from inside."""
    directory = tmp_path_factory.mktemp("outside")
    secret = directory / "secret.json"
    secret.write_text('{"secret": 1}')
    experiment = viewed["experiment"]
    if not (experiment / "link.json").exists():
        os.symlink(secret, experiment / "link.json")
        os.symlink(directory, experiment / "linked-directory")
    return secret


@pytest.mark.parametrize(
    "path",
    [
        "/files/0/../../../../etc/passwd",
        "/files/0/gate-ablation-test/../../outside/secret.json",
        "/files/0/%2e%2e/%2e%2e/etc/passwd",
        "/files/0/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/files/0/gate-ablation-test/%2e%2e%2f%2e%2e%2fsecret.json",
        "/files/0//etc/passwd",
        "/files/0/gate-ablation-test/link.json",
        "/files/0/gate-ablation-test/linked-directory/secret.json",
        "/files/0/char-lm/checkpoints/step-00000012/model.safetensors",
        "/files/0/char-lm/lock",
        "/files/9/x.json",
        "/files/0/char-lm",
        "/files/0/char-lm/%00.json",
    ],
)
def test_nothing_outside_the_directories_is_served(served, outside, path):
    status, data, _ = raw_request(served, path)
    assert status in (403, 404), (path, status)
    assert b"secret" not in data and b"root:" not in data


def test_a_file_inside_is_served(served, outside):
    status, data, response = raw_request(served, "/files/0/char-lm/config.json")
    assert status == 200 and json.loads(data)["task"] == "language_model"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_static_files_are_only_the_package_s(served):
    assert raw_request(served, "/static/viewer.js")[0] == 200
    assert raw_request(served, "/static/../__init__.py")[0] == 404
    assert raw_request(served, "/static/%2e%2e%2f__init__.py")[0] == 404


def test_over_long_texts_and_bodies_are_refused(served):
    body = json.dumps({"id": "0/char-lm", "text": "a" * (MAX_TEXT + 1)}).encode()
    status, data, _ = raw_request(served, "/api/inside", "POST", body)
    assert status == 400 and b"at most" in data
    status, data, _ = raw_request(served, "/api/inside", "POST", b"{" + b" " * MAX_BODY + b"}")
    assert status == 413
    status, _, _ = raw_request(served, "/api/inside", "POST", None, {"Content-Length": "-5"})
    assert status == 411


def test_a_request_for_another_host_is_refused(served):
    status, data, _ = raw_request(served, "/api/runs", headers={"Host": "attacker.example:80"})
    assert status == 403 and b"localhost" in data
    assert raw_request(served, "/api/runs", headers={"Host": f"127.0.0.1:{served.port}"})[0] == 200


def test_the_default_bind_is_loopback_without_a_token(viewed):
    args = build_parser().parse_args(["view"])
    assert args.host == "127.0.0.1" and args.port == 8080
    serving = Served([viewed["root"]])
    try:
        assert serving.server.server_address[0] == "127.0.0.1" and serving.token is None
    finally:
        serving.stop()


def test_another_host_needs_the_token(viewed):
    serving = Served([viewed["root"]], host="0.0.0.0")
    try:
        assert serving.token and len(serving.token) >= 20
        assert raw_request(serving, "/api/runs")[0] == 401
        assert raw_request(serving, "/")[0] == 401
        assert raw_request(serving, "/api/runs?token=wrong")[0] == 401
        assert raw_request(serving, "/files/0/char-lm/config.json")[0] == 401
        status, _, response = raw_request(serving, f"/?token={serving.token}")
        assert status == 200
        cookie = response.headers["Set-Cookie"].split(";")[0]
        assert "HttpOnly" in response.headers["Set-Cookie"]
        assert raw_request(serving, "/api/runs", headers={"Cookie": cookie})[0] == 200
        assert raw_request(serving, "/api/runs", headers={"X-Rnnkit-Token": serving.token})[0] == 200
    finally:
        serving.stop()


def test_a_port_in_use_is_one_line(served, capsys):
    from cli_helpers import assert_usage_error

    assert_usage_error(capsys, ["view", "--port", str(served.port)], f"cannot listen on 127.0.0.1:{served.port}")
    assert_usage_error(capsys, ["view", "--port", "70000"], "--port must be 0 to 65535")
