import pytest

from mnistdist.errors import OptionError
from mnistdist.runtime import check_scheduler_address


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
