import pytest

from mnistdist.errors import OptionError
from mnistdist.runtime import check_scheduler_address, read_scheduler_file


@pytest.mark.parametrize(
    "address, problem",
    [
        ("garbage", "expected tcp://HOST:PORT"),
        ("inproc://x", "inproc"),
        ("tls://127.0.0.1:1", "needs certificates"),
        ("", "empty"),
        ("tcp://host:99999", "outside 1-65535"),
        ("tcp://:8786", "no host"),
        ("tcp://host:x", "expected tcp://HOST:PORT"),
        ("ucx://host:1", "ucx"),
        ("tcp://ho st:1", "spaces"),
    ],
)
def test_bad_addresses_are_refused_naming_them(address, problem, monkeypatch):
    for name in ("MNISTDIST_TLS_CA_FILE", "MNISTDIST_TLS_CERT", "MNISTDIST_TLS_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(OptionError, match=problem) as info:
        check_scheduler_address(address)
    assert repr(address) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:8786", "10.0.0.5:8786", "ws://h:1"])
def test_good_addresses_pass(address):
    assert check_scheduler_address(address) == address


def _bad_file(tmp_path, kind):
    path = tmp_path / "scheduler.json"
    if kind == "missing":
        return path, "does not exist"
    if kind == "folder":
        path.mkdir()
        return path, "is a folder"
    if kind == "unreadable":  # root reads any mode: a loop of links cannot be opened
        path.symlink_to(tmp_path / "loop")
        (tmp_path / "loop").symlink_to(path)
        return path, "cannot be read"
    if kind == "not json":
        path.write_text("address: tcp://127.0.0.1:8786\n")
        return path, "is not JSON"
    if kind == "no address":
        path.write_text('{"type": "Scheduler"}')
        return path, "names no scheduler 'address'"
    path.write_text('{"address": "inproc://10.0.0.1/1/1"}')
    return path, "inproc"


@pytest.mark.parametrize(
    "kind", ["missing", "folder", "unreadable", "not json", "no address", "bad address"]
)
def test_bad_scheduler_files_are_refused_in_one_line(tmp_path, kind):
    path, problem = _bad_file(tmp_path, kind)
    with pytest.raises(OptionError, match=problem) as info:
        read_scheduler_file(path)
    assert "\n" not in str(info.value)


def test_a_scheduler_file_names_its_address(tmp_path):
    path = tmp_path / "scheduler.json"
    path.write_text('{"type": "Scheduler", "address": "tcp://127.0.0.1:8786", "workers": {}}')
    assert read_scheduler_file(path) == "tcp://127.0.0.1:8786"
