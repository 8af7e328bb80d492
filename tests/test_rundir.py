import pickle
import zipfile

import numpy as np
import pytest
from safetensors.numpy import save_file

from rnnkit.errors import UsageError
from rnnkit.rundir import RunDirectory, check_safetensors_file, new_run_path, read_tensor_file


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(160, dtype=np.float32)}, str(path))
    return path


def test_a_whole_file_loads(weights):
    check_safetensors_file(weights)
    assert read_tensor_file(weights)["a"].shape == (2, 3)


def test_truncated_file(weights):
    weights.write_bytes(weights.read_bytes()[:-1])
    with pytest.raises(UsageError, match="truncated or corrupt"):
        read_tensor_file(weights)
    weights.write_bytes(weights.read_bytes()[:20])
    with pytest.raises(UsageError, match="not a safetensors file, or truncated"):
        read_tensor_file(weights)
    weights.write_bytes(b"")
    with pytest.raises(UsageError, match="truncated"):
        read_tensor_file(weights)


def test_corrupt_header(weights):
    data = bytearray(weights.read_bytes())
    data[9:13] = b"\xff\xfe!!"
    weights.write_bytes(bytes(data))
    with pytest.raises(UsageError, match="corrupt safetensors header"):
        read_tensor_file(weights)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pickles_are_refused(tmp_path, protocol):
    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps({"weight": [1.0, 2.0]}, protocol=protocol))
    with pytest.raises(UsageError, match="pickle"):
        read_tensor_file(path)


def test_torch_save_archives_are_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({}))
    with pytest.raises(UsageError, match="pickle"):
        read_tensor_file(path)


def test_run_directory_errors(tmp_path):
    with pytest.raises(UsageError, match="no such run directory"):
        RunDirectory.existing(tmp_path / "absent")
    with pytest.raises(UsageError, match="not an rnnkit run directory"):
        RunDirectory.existing(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "vocabulary.json").write_text("{}")
    with pytest.raises(UsageError, match="no checkpoint yet"):
        RunDirectory.existing(tmp_path).latest_checkpoint()


def test_new_run_paths_are_fresh(tmp_path):
    first = new_run_path(tmp_path)
    first.mkdir()
    assert new_run_path(tmp_path) != first
