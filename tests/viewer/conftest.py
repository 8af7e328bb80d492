import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def viewed(tmp_path_factory):
    """The test's runs (viewer_helpers.make_runs), made once."""
    from viewer_helpers import make_runs

    return make_runs(tmp_path_factory.mktemp("viewed"))


class Served:
    """A viewer serving on a free loopback port in this process, stopped at the end of the test module."""

    def __init__(self, directories, host="127.0.0.1", engine="torch", time_limit=30.0):
        from rnnkit.viewer.server import make_server

        self.server, self.token = make_server([str(d) for d in directories], host, 0, engine, time_limit)
        self.port = self.server.server_address[1]
        self.url = f"http://localhost:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def served(viewed):
    serving = Served([viewed["root"]])
    yield serving
    serving.stop()
