"""Grid files: a search's estimator and its parameter grid, in a YAML or JSON file a user edits.

A grid file says what to search and over what, on its own::

    description: the book's grid, a plain KNN over weights x n_neighbors
    estimator: KNNClassifier
    param_grid:
      n_neighbors: [3, 4, 5]
      weights: [uniform, distance]

``estimator`` is one of the classes in :data:`ESTIMATORS` (a name, or
``{Name: {parameter: value}}``), or a pipeline: a list of ``{step: estimator}``
whose last step is a KNN classifier. ``param_grid`` is scikit-learn's (a
mapping, or a list of mappings), with ``Pipeline.set_params``'s
``step__parameter`` names; a step's own name takes ``passthrough`` or an
estimator. With ``strategy: random`` (or ``--strategy random``) a parameter
may instead take a distribution: ``{randint: [low, high]}``,
``{uniform: [loc, scale]}`` or ``{loguniform: [low, high]}``, scipy.stats's
arguments. The presets (``presets/*.yaml`` beside this module) are such files.

Every value is checked before any work, as scikit-learn's ``fit`` would check
it (the estimators' ``_parameter_constraints``), so a mistake is one line that
names the file, the key and what was expected.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence

import scipy.stats
import yaml
from sklearn.base import BaseEstimator, clone
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Normalizer

from ..errors import OptionError
from ..neighbors import DeformationKNNClassifier, KNNClassifier, is_reranking
from ..preprocessing import Augment, Deskew, GaussianBlur
from ._pipeline_tasks import split_pipeline

#: The estimators a grid file can name: mnistdist's steps and classifiers, and the
#: scikit-learn transformers its pipelines use.
ESTIMATORS: dict[str, type[BaseEstimator]] = {
    cls.__name__: cls
    for cls in (
        Deskew,
        GaussianBlur,
        Augment,
        Normalizer,
        PCA,
        KNNClassifier,
        DeformationKNNClassifier,
    )
}

#: The distributions a random search's grid may give a parameter, by their scipy.stats names.
DISTRIBUTIONS = {
    "randint": scipy.stats.randint,
    "uniform": scipy.stats.uniform,
    "loguniform": scipy.stats.loguniform,
}

#: How a grid is searched: every candidate on every image, by successive halving, or
#: ``n_iter`` candidates drawn at random (scikit-learn's ``RandomizedSearchCV``).
STRATEGIES = ("grid", "halving", "random")

#: The keys of a grid file; ``estimator`` and ``param_grid`` are required.
FILE_KEYS = ("description", "estimator", "param_grid", "strategy", "n_iter", "fit_to_images")


class _Loader(yaml.SafeLoader):
    """YAML as JSON reads numbers: ``1e-3`` is a float (YAML 1.1 wants ``1.0e-3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _fail(where: str, message: str) -> OptionError:
    return OptionError(f"{where}: {message}")


def read_grid_file(path: str | os.PathLike) -> dict:
    """The mapping in a grid file (JSON if it ends in ``.json``, else YAML); not yet checked.

    Raises
    ------
    OptionError
        If the file cannot be read or parsed, or holds no mapping.
    """
    where = f"grid file {os.fspath(path)}"
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise _fail(where, exc.strerror or str(exc)) from None
    except UnicodeDecodeError:
        raise _fail(where, "not a text file (expected YAML or JSON)") from None
    try:
        document = (
            json.loads(text)
            if os.fspath(path).endswith(".json")
            else yaml.load(text, Loader=_Loader)  # a SafeLoader: plain data only
        )
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _fail(where, f"not valid {_format(path)}: {first}") from None
    if not isinstance(document, dict):
        raise _fail(where, f"expected a mapping with {' and '.join(FILE_KEYS[1:3])}")
    return document


def _format(path) -> str:
    return "JSON" if os.fspath(path).endswith(".json") else "YAML"


def _estimator(spec, where: str) -> BaseEstimator:
    """An estimator from ``Name``, ``{Name: {parameter: value}}`` or a list of named steps."""
    if isinstance(spec, list):
        return _pipeline(spec, where)
    if isinstance(spec, str):
        name, params = spec, {}
    elif isinstance(spec, dict) and len(spec) == 1:
        name, params = next(iter(spec.items()))
        params = {} if params is None else params
    else:
        raise _fail(
            where,
            f"expected an estimator's name, {{Name: {{parameter: value}}}} or a "
            f"list of {{step: estimator}}, got {spec!r}",
        )
    if name not in ESTIMATORS:
        raise _fail(where, f"unknown estimator {name!r}: expected one of {', '.join(ESTIMATORS)}")
    if not isinstance(params, dict):
        raise _fail(f"{where}.{name}", f"expected a mapping of parameters, got {params!r}")
    estimator = ESTIMATORS[name]()
    valid = estimator.get_params(deep=False)
    for param, value in params.items():
        if param not in valid:
            raise _fail(
                f"{where}.{name}",
                f"{name} has no parameter {param!r}: expected one of {', '.join(valid)}",
            )
        _check_value(estimator, param, value, f"{where}.{name}.{param}")
    return estimator.set_params(**params)


def _pipeline(steps: list, where: str) -> Pipeline:
    named = []
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or len(step) != 1:
            raise _fail(f"{where}[{i}]", f"expected one {{step: estimator}}, got {step!r}")
        name, spec = next(iter(step.items()))
        if not isinstance(name, str) or "__" in name or name in {n for n, _ in named}:
            raise _fail(f"{where}[{i}]", f"expected a new step name without '__', got {name!r}")
        value = "passthrough" if spec == "passthrough" else _estimator(spec, f"{where}[{i}].{name}")
        named.append((name, value))
    if not named:
        raise _fail(where, "expected at least one step")
    return Pipeline(named)


def _owner(estimator: BaseEstimator, key: str) -> tuple[object, str]:
    """The object that holds parameter ``key`` (a step of a pipeline, say) and its own name."""
    *path, param = key.split("__")
    owner = estimator
    for part in path:
        owner = owner.get_params(deep=True)[part]
    return owner, param


def _check_value(estimator: BaseEstimator, key: str, value, where: str, n_features=None) -> None:
    """Refuse ``value`` for ``key`` where scikit-learn would: its type, its range, its size."""
    owner, param = _owner(estimator, key)
    default = owner.get_params(deep=False).get(param) if hasattr(owner, "get_params") else None
    if isinstance(value, bool) and default is not None and not isinstance(default, bool):
        raise _fail(where, f"expected a value like {default!r}, got {value!r}")
    trial = clone(estimator).set_params(**{key: value})
    checked, _ = _owner(trial, key) if "__" in key or not _is_step(estimator, key) else (value, "")
    if hasattr(checked, "_parameter_constraints") and hasattr(checked, "_validate_params"):
        try:
            checked._validate_params()
        except (ValueError, TypeError) as exc:
            raise _fail(where, f"expected what scikit-learn accepts: {exc}") from None
    if param == "n_components" and _too_large(value, n_features):
        raise _fail(where, f"{value} is more components than the images' {n_features} pixels")


def _is_step(estimator, key: str) -> bool:
    return isinstance(estimator, Pipeline) and key in dict(estimator.steps)


def _too_large(value, n_features) -> bool:
    return (
        n_features is not None
        and isinstance(value, int)
        and not isinstance(value, bool)
        and value > n_features
    )


def is_distribution(value) -> bool:
    """Whether a grid value is a distribution to sample (scipy.stats's, with ``rvs``)."""
    return hasattr(value, "rvs")


def _distribution(spec: dict, where: str):
    """``{randint: [low, high]}`` and the like, as a frozen scipy.stats distribution."""
    ((name, args),) = spec.items()
    if name not in DISTRIBUTIONS:
        raise _fail(
            where,
            f"unknown distribution {name!r}: expected a list of values or one of "
            f"{', '.join(DISTRIBUTIONS)}",
        )
    if not isinstance(args, list) or not all(
        isinstance(a, (int, float)) and not isinstance(a, bool) for a in args
    ):
        raise _fail(where, f"expected {name}'s arguments as a list of numbers, got {args!r}")
    try:
        dist = DISTRIBUTIONS[name](*args)
        dist.rvs(random_state=0)
    except (TypeError, ValueError) as exc:
        raise _fail(where, f"{name}{tuple(args)} is not a distribution: {exc}") from None
    return dist


def _support(dist) -> list:
    """The ends of a distribution's support, as values of the type it draws."""
    sample = dist.rvs(random_state=0)
    kind = type(sample.item()) if hasattr(sample, "item") else type(sample)
    return [kind(end) for end in dist.support() if math.isfinite(end)]


def _values(key: str, values, where: str, *, random: bool):
    """A grid entry's values as a list or a distribution; file distributions are made here."""
    if isinstance(values, dict) and len(values) == 1:
        values = _distribution(values, where)
    if is_distribution(values):
        if not random:
            raise _fail(where, "a distribution needs --strategy random (or strategy: random)")
        return values
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Sequence):
        raise _fail(where, f"expected a list of values, got {values!r}")
    if len(values) == 0:
        raise _fail(where, "expected a non-empty list of values, got []")
    return list(values)


def check_param_grid(
    estimator: BaseEstimator,
    param_grid: Mapping | Sequence[Mapping],
    *,
    random: bool = False,
    n_features: int | None = None,
    fit_to_images: bool = False,
    where: str = "param_grid",
) -> list[dict]:
    """``param_grid`` checked against ``estimator``, as a list of grids; distributions made.

    Parameters
    ----------
    estimator : estimator
        What the grid's parameters are set on.
    param_grid : dict or list of dicts
        Parameter names to lists of values; with ``random``, to distributions too
        (objects with ``rvs``, or ``{randint: [low, high]}`` and the like).
    random : bool, default=False
        Whether distributions are allowed (a random search).
    n_features : int, optional
        The images' pixels: a larger ``n_components`` is refused...
    fit_to_images : bool, default=False
        ...or, with this, left out of its list (a list left empty is refused).
    where : str, default="param_grid"
        Starts every error message (the file's name, for a grid file).

    Returns
    -------
    list of dict

    Raises
    ------
    OptionError
        Naming the entry and what was expected: an unknown step or parameter, a
        value that is no list, an empty list, a value the estimator refuses.
    """
    grids = [param_grid] if isinstance(param_grid, Mapping) else param_grid
    if isinstance(grids, (str, bytes)) or not isinstance(grids, Sequence) or not grids:
        raise _fail(where, f"expected a mapping or a non-empty list of them, got {param_grid!r}")
    valid = estimator.get_params(deep=True)
    checked = []
    for i, grid in enumerate(grids):
        at = where if isinstance(param_grid, Mapping) else f"{where}[{i}]"
        if not isinstance(grid, Mapping) or not grid:
            raise _fail(at, f"expected a non-empty mapping of parameters, got {grid!r}")
        checked.append(
            {
                key: _entry(
                    estimator, valid, key, values, f"{at}.{key}", random, n_features, fit_to_images
                )
                for key, values in grid.items()
            }
        )
    return checked


def _entry(estimator, valid, key, values, where, random, n_features, fit_to_images):
    """One grid entry checked: its name, its values (or distribution), each value."""
    if not isinstance(key, str) or key not in valid:
        raise _fail(where, _unknown(estimator, valid, key))
    values = _values(key, values, where, random=random)
    if is_distribution(values):
        for end in _support(values):
            _check_value(estimator, key, end, where, n_features)
        return values
    if _is_step(estimator, key):
        if key == estimator.steps[-1][0]:
            raise _fail(where, "the classifier step is searched by its parameters, not replaced")
        values = [_step_value(v, where) for v in values]
    if fit_to_images and key.rpartition("__")[2] == "n_components":
        values = [v for v in values if not _too_large(v, n_features)]
        if not values:
            raise _fail(
                where, f"every value is more components than the images' {n_features} pixels"
            )
    for value in values:
        _check_value(estimator, key, value, where, n_features)
    return values


def _unknown(estimator, valid: dict, key) -> str:
    """What is wrong with a parameter name the estimator lacks: its step, or the parameter."""
    steps = [n for n, _ in estimator.steps] if isinstance(estimator, Pipeline) else []
    head, _, param = str(key).partition("__")
    if steps and head not in steps:
        return f"unknown step {head!r}: expected one of {', '.join(steps)}"
    owner = valid[head] if steps else estimator
    name = param if steps else str(key)
    if not hasattr(owner, "get_params"):
        return f"step {head!r} is {owner!r}: it has no parameter {name!r}"
    names = ", ".join(owner.get_params(deep=False))
    return f"{type(owner).__name__} has no parameter {name!r}: expected one of {names}"


def _step_value(value, where: str):
    """A step's value in a grid: ``passthrough``, an estimator, or a grid file's spec of one."""
    if value == "passthrough" or hasattr(value, "get_params"):
        return value
    if isinstance(value, (str, dict)):
        return _estimator(value, where)
    raise _fail(where, f"expected passthrough or an estimator, got {value!r}")


def load_grid(document: dict, *, where: str, n_features: int | None = None) -> dict:
    """A grid file's mapping checked: its estimator built, its grid checked; the file's keys.

    Returns a dict with ``estimator``, ``param_grid`` (a list of grids, or the
    mapping as written), ``description``, ``strategy``, ``n_iter`` and
    ``holds_gil`` (the classifier re-ranks, which holds the GIL).

    Raises
    ------
    OptionError
        Naming the file's key and what was expected.
    """
    unknown = [k for k in document if k not in FILE_KEYS]
    if unknown:
        raise _fail(where, f"unknown key {unknown[0]!r}: expected {', '.join(FILE_KEYS)}")
    for key in ("estimator", "param_grid"):
        if key not in document:
            raise _fail(where, f"no {key!r}: a grid file names its estimator and its param_grid")
    options = _options(document, where)
    estimator = _estimator(document["estimator"], f"{where}: estimator")
    try:
        _, _, knn = split_pipeline(estimator)
    except OptionError as exc:
        raise _fail(f"{where}: estimator", str(exc)) from None
    grids = check_param_grid(
        estimator,
        document["param_grid"],
        random=True,  # a distribution is refused later, when the strategy is known
        n_features=n_features,
        fit_to_images=options["fit_to_images"],
        where=f"{where}: param_grid",
    )
    drawn = [k for g in grids for k, v in g.items() if is_distribution(v)]
    strategy = options["strategy"] or ("random" if drawn else "grid")
    if drawn and strategy != "random":
        raise _fail(
            f"{where}: strategy",
            f"{strategy} cannot search the distribution of {drawn[0]}: expected random",
        )
    return {
        "estimator": estimator,
        "param_grid": grids[0] if isinstance(document["param_grid"], dict) else grids,
        "description": options["description"],
        "strategy": strategy,
        "n_iter": options["n_iter"],
        "holds_gil": is_reranking(knn),
    }


def _options(document: dict, where: str) -> dict:
    """The file's keys other than the estimator and the grid, checked."""
    description = document.get("description", "")
    strategy = document.get("strategy")
    n_iter = document.get("n_iter")
    fit = document.get("fit_to_images", False)
    if not isinstance(description, str):
        raise _fail(f"{where}: description", f"expected a line of text, got {description!r}")
    if strategy is not None and strategy not in STRATEGIES:
        raise _fail(
            f"{where}: strategy", f"expected one of {', '.join(STRATEGIES)}, got {strategy!r}"
        )
    if n_iter is not None and (
        isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 1
    ):
        raise _fail(f"{where}: n_iter", f"expected a positive integer, got {n_iter!r}")
    if not isinstance(fit, bool):
        raise _fail(f"{where}: fit_to_images", f"expected true or false, got {fit!r}")
    return {
        "description": description,
        "strategy": strategy,
        "n_iter": n_iter,
        "fit_to_images": fit,
    }
