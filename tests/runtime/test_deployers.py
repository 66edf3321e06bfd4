import signal
import sys

import dask
import pytest
import yaml

from mnistdist.errors import OptionError
from mnistdist.runtime import deployer_class, read_cluster_spec, shipped_specs

GOOD = {"class": "distributed.LocalCluster", "kwargs": {"n_workers": 0}, "scale": 2}


def _write(tmp_path, data, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


def test_a_spec_file(tmp_path):
    spec = read_cluster_spec(_write(tmp_path, {**GOOD, "timeout": "2 minutes"}))
    assert (spec.module, spec.name, spec.kwargs) == ("distributed", "LocalCluster", GOOD["kwargs"])
    assert spec.workers_wanted == 2 and spec.timeout == 120 and spec.adapt is None


def test_labextension_style_and_adapt(tmp_path):
    data = {"module": "distributed", "class": "LocalCluster", "adapt": {"minimum": 1, "maximum": 4}}
    spec = read_cluster_spec(_write(tmp_path, data))
    assert (spec.module, spec.name, spec.workers_wanted) == ("distributed", "LocalCluster", 1)


def test_specs_from_dask_config_by_name_and_by_key():
    with dask.config.set({"mnistdist.clusters.mysite": GOOD, "labextension.factory": GOOD}):
        assert "mnistdist.clusters.mysite" in read_cluster_spec("mysite").source
        assert read_cluster_spec("labextension.factory").name == "LocalCluster"


@pytest.mark.parametrize("name", ["slurm", "pbs", "kubernetes", "gateway"])
def test_the_shipped_specs_read(name):
    assert name in shipped_specs()
    spec = read_cluster_spec(name)
    assert spec.workers_wanted >= 1 and spec.timeout == 600
    assert spec.extra == {"slurm": "slurm", "pbs": "pbs"}.get(name, name)


@pytest.mark.parametrize(
    "data, problem",
    [
        ("a: [b", "not YAML"),
        ("- a list", "expected a mapping"),
        ({**GOOD, "workers": 2}, "unknown keys ['workers']"),
        ({"class": "LocalCluster", "scale": 1}, "'class' must name a cluster class"),
        ({"class": "distributed.LocalCluster"}, "give the workers wanted"),
        ({**GOOD, "adapt": {"minimum": 1, "maximum": 2}}, "give the workers wanted"),
        ({**GOOD, "scale": 0}, "scale must be a positive integer"),
        ({**{k: v for k, v in GOOD.items() if k != "scale"}, "adapt": {"minimum": 0}}, "adapt"),
        ({**GOOD, "timeout": "soon"}, "is not a duration"),
        ({**GOOD, "kwargs": [1]}, "'kwargs' a mapping"),
    ],
)
def test_bad_specs_are_one_line_option_errors(tmp_path, data, problem):
    with pytest.raises(OptionError, match=problem.replace("[", r"\[")) as info:
        read_cluster_spec(_write(tmp_path, data))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["no-such", "no/such.yaml", ""])
def test_specs_that_name_nothing(name):
    with pytest.raises(OptionError, match=r"no such file|empty"):
        read_cluster_spec(name)


def test_a_missing_deployer_names_the_extra_to_install(tmp_path):
    data = {"class": "dask_gateway_not_here.GatewayCluster", "scale": 1}
    spec = read_cluster_spec(_write(tmp_path, data))
    with pytest.raises(OptionError, match="needs dask_gateway_not_here, which is not installed"):
        deployer_class(spec)
    spec = read_cluster_spec("kubernetes")
    if "dask_kubernetes" in sys.modules or _importable("dask_kubernetes"):
        pytest.skip("dask-kubernetes is installed here")
    with pytest.raises(OptionError, match=r"pip install 'mnistdist\[kubernetes\]'"):
        deployer_class(spec)


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_a_deployer_that_takes_sigint_over_gets_it_back(tmp_path, monkeypatch):
    # dask_jobqueue's runner module sets a SIGINT handler that exits at once, as it is imported.
    (tmp_path / "grabs_sigint.py").write_text(
        "import signal, sys\n"
        "signal.signal(signal.SIGINT, lambda *_: sys.exit())\n"
        "from distributed import LocalCluster as Cluster\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    before = signal.getsignal(signal.SIGINT)
    spec = read_cluster_spec(_write(tmp_path, {"class": "grabs_sigint.Cluster", "scale": 1}))
    assert deployer_class(spec).__name__ == "LocalCluster"
    assert signal.getsignal(signal.SIGINT) is before
