"""mnistdist's settings: the defaults, the schema and the code's uses in step, as
Distributed's test keeps ``distributed-schema.yaml`` with ``distributed.yaml``."""

import ast
import pathlib

import dask.config
import pytest
import yaml

import mnistdist
from mnistdist import config

from helpers import CLUSTER_DIR, REPO

PACKAGE = pathlib.Path(mnistdist.__file__).parent
DEFAULTS = yaml.safe_load((PACKAGE / "mnistdist.yaml").read_text())["mnistdist"]
SCHEMA = yaml.safe_load((PACKAGE / "mnistdist-schema.yaml").read_text())
KEYS = SCHEMA["properties"]["mnistdist"]["properties"]
TYPES = {
    "integer": int,
    "number": (int, float),
    "string": str,
    "boolean": bool,
    "array": list,
    "object": dict,
    "null": type(None),
}


def _uses() -> set[str]:
    """Every ``config.get("key")`` in the library, and every ``"mnistdist.key"`` it sets."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and getattr(node.func.value, "id", None) == "config"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(node.args[0].value)
            if isinstance(node, ast.Dict):
                found |= {
                    k.value.removeprefix("mnistdist.")
                    for k in node.keys
                    if isinstance(k, ast.Constant)
                    and isinstance(k.value, str)
                    and k.value.startswith("mnistdist.")
                }
    return found


def test_every_default_is_described_and_every_description_has_a_default():
    assert set(DEFAULTS) == set(KEYS)
    for key, spec in KEYS.items():
        assert spec.get("description", "").strip(), key


@pytest.mark.parametrize("key", sorted(KEYS))
def test_each_default_has_its_described_type(key):
    spec, value = KEYS[key], DEFAULTS[key]
    types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
    allowed = tuple(
        t
        for name in types
        for t in (TYPES[name] if isinstance(TYPES[name], tuple) else (TYPES[name],))
    )
    assert isinstance(value, allowed), (key, value)
    if isinstance(value, int) and not isinstance(value, bool) and "minimum" in spec:
        assert value >= spec["minimum"]
    if spec["type"] == "array":
        item = TYPES[spec["items"]["type"]]
        assert all(isinstance(v, item) for v in value)


def test_the_code_uses_every_setting_and_only_those():
    assert _uses() == set(KEYS)


def test_the_defaults_reach_dask_config():
    for key, value in DEFAULTS.items():
        assert config.get(key) == dask.config.get(f"mnistdist.{key}") == value


def _leaves(tree: dict, prefix: tuple = ()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def test_the_cluster_yaml_holds_only_what_differs_from_the_defaults():
    """cluster/dask.yaml repeats no default: a repeated one would silently win wherever
    DASK_CONFIG points there, after the default changed."""
    cluster = yaml.safe_load((CLUSTER_DIR / "dask.yaml").read_text())
    distributed_schema = yaml.safe_load(
        (
            pathlib.Path(__import__("distributed").__file__).parent / "distributed-schema.yaml"
        ).read_text()
    )
    for path, value in _leaves(cluster):
        default = dask.config.get(".".join(path), default=KeyError)
        assert default is not KeyError, f"{'.'.join(path)} is no Dask or mnistdist setting"
        assert default != value, f"{'.'.join(path)} repeats its default {value!r}"
        spec = distributed_schema if path[0] == "distributed" else SCHEMA
        for key in path:
            spec = spec["properties"][key]  # a key the schema knows


def test_the_docs_list_every_setting():
    text = (REPO / "docs" / "configuration.md").read_text()
    missing = [key for key in KEYS if f"`mnistdist.{key}`" not in text]
    assert not missing, missing
