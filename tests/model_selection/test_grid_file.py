"""Grid files: each kind of mistake is one line naming the file, the key and what was expected,
refused before any cluster starts; good files give the estimator and grid they spell out."""

import json
import textwrap

import pytest
import scipy.stats
from sklearn.model_selection import ParameterGrid

from mnistdist.cli import main
from mnistdist.errors import OptionError
from mnistdist.model_selection import check_param_grid, get_preset, grid_file
from mnistdist.neighbors import DeformationKNNClassifier, KNNClassifier
from mnistdist.preprocessing import Deskew

from helpers import free_port

PIPELINE = """\
estimator:
  - deskew: Deskew
  - pca: {PCA: {n_components: 16, random_state: 0}}
  - knn: KNNClassifier
"""

#: (file text, what the one line must say): every kind of mistake a grid file can hold.
MISTAKES = [
    # unknown step, unknown parameter
    (
        PIPELINE + "param_grid: {pcaa__n_components: [8]}",
        "param_grid.pcaa__n_components: unknown step 'pcaa': expected one of deskew, pca, knn",
    ),
    (
        PIPELINE + "param_grid: {pca__n_comp: [8]}",
        "param_grid.pca__n_comp: PCA has no parameter 'n_comp': expected one of",
    ),
    (
        "estimator: KNNClassifier\nparam_grid: {leaf_size: [3]}",
        "param_grid.leaf_size: KNNClassifier has no parameter 'leaf_size'",
    ),
    (
        "estimator: {KNNClassifier: {k: 3}}\nparam_grid: {weights: [uniform]}",
        "estimator.KNNClassifier: KNNClassifier has no parameter 'k'",
    ),
    (
        "estimator: KNNClasifier\nparam_grid: {weights: [uniform]}",
        "estimator: unknown estimator 'KNNClasifier': expected one of",
    ),
    # wrong type
    (
        PIPELINE + "param_grid: {knn__n_neighbors: 3}",
        "param_grid.knn__n_neighbors: expected a list of values, got 3",
    ),
    (
        PIPELINE + "param_grid: {knn__n_neighbors: ['3']}",
        "param_grid.knn__n_neighbors: expected "
        "what scikit-learn accepts: The 'n_neighbors' parameter of KNNClassifier must be an int",
    ),
    (PIPELINE + "param_grid: {knn__n_neighbors: [true]}", "expected a value like 5, got True"),
    (
        PIPELINE + "param_grid: {deskew: [3]}",
        "param_grid.deskew: expected passthrough or an estimator, got 3",
    ),
    (
        PIPELINE + "param_grid: [{knn__n_neighbors: [3]}, 7]",
        "param_grid[1]: expected a non-empty mapping of parameters, got 7",
    ),
    (
        "estimator: KNNClassifier\nparam_grid: {weights: [uniform]}\nn_iter: -2",
        "n_iter: expected a positive integer, got -2",
    ),
    # empty list, empty grid
    (
        PIPELINE + "param_grid: {knn__n_neighbors: []}",
        "param_grid.knn__n_neighbors: expected a non-empty list of values, got []",
    ),
    (PIPELINE + "param_grid: []", "param_grid: expected a mapping or a non-empty list"),
    # a value scikit-learn would refuse
    (
        PIPELINE + "param_grid: {knn__n_neighbors: [3, 0]}",
        "The 'n_neighbors' parameter of "
        "KNNClassifier must be an int in the range [1, inf). Got 0 instead.",
    ),
    (
        PIPELINE + "param_grid: {pca__n_components: [many]}",
        "The 'n_components' parameter of PCA must be",
    ),
    (
        PIPELINE + "param_grid: {pca__n_components: [100]}",
        "param_grid.pca__n_components: 100 is more components than the images' 64 pixels",
    ),
    (
        PIPELINE + "param_grid: {knn__weights: [closest]}",
        "The 'weights' parameter of KNNClassifier must be a str among",
    ),
    (
        "estimator: [{augment: {Augment: {kind: elastic9}}}, {knn: KNNClassifier}]\n"
        "param_grid: {knn__n_neighbors: [3]}",
        "estimator[0].augment.Augment.kind: expected what "
        "scikit-learn accepts: The 'kind' parameter of Augment must be a str among",
    ),
    # distributions: only for a random search, and only real ones
    (
        PIPELINE + "strategy: grid\nparam_grid: {knn__n_neighbors: {randint: [1, 9]}}",
        "strategy: grid cannot search the distribution of knn__n_neighbors: expected random",
    ),
    (
        PIPELINE + "param_grid: {knn__n_neighbors: {normal: [1, 9]}}",
        "unknown distribution 'normal'",
    ),
    (
        PIPELINE + "param_grid: {knn__n_neighbors: {randint: [9, 1]}}",
        "randint(9, 1) is not a distribution",
    ),
    (
        PIPELINE + "param_grid: {knn__n_neighbors: {uniform: [1, 9]}}",
        "param_grid.knn__n_neighbors:"
        " expected what scikit-learn accepts: The 'n_neighbors' parameter of KNNClassifier must be "
        "an int",
    ),
    # the file's own keys and shape
    (
        "estimator: KNNClassifier\nparam_grid: {weights: [uniform]}\nstrateg: grid",
        "unknown key 'strateg'",
    ),
    ("param_grid: {weights: [uniform]}", "no 'estimator'"),
    (
        "estimator: [{scale: Normalizer}]\nparam_grid: {scale__norm: [l1]}",
        "estimator: the last step must be a k-nearest-neighbours classifier",
    ),
    (
        PIPELINE + "param_grid: {knn: [KNNClassifier]}",
        "param_grid.knn: the classifier step is searched by its parameters, not replaced",
    ),
    ("estimator: KNNClassifier\nparam_grid: {weights: [uniform]\n", "not valid YAML"),
    ("- just\n- a list\n", "expected a mapping with estimator and param_grid"),
]


def _write(tmp_path, text: str, name: str = "grid.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", MISTAKES)
def test_each_mistake_is_one_line_naming_the_file_and_key(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(OptionError) as caught:
        grid_file(path, n_features=64)
    line = str(caught.value)
    assert "\n" not in line and line.startswith(f"grid file {path}: "), line
    assert message in line


@pytest.mark.parametrize("text, message", MISTAKES[::3])
def test_the_command_refuses_a_bad_grid_file_before_any_cluster_starts(
    tmp_path, capsys, text, message
):
    """Exit 2 and one line; the scheduler named (where nothing listens) is never contacted,
    and no output folder is made."""
    path, out = _write(tmp_path, text), tmp_path / "out"
    code = main(
        ["search", "--dataset", "digits", "--grid", str(path), "--out", str(out),
         "--scheduler", f"tcp://127.0.0.1:{free_port()}"]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"mnistdist search: error: grid file {path}: ") and message in err[0]
    assert not out.exists() and not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_json_and_yaml_files_say_the_same(tmp_path):
    document = {
        "description": "deskewed PCA and a KNN",
        "estimator": [
            {"deskew": "Deskew"},
            {"pca": {"PCA": {"n_components": 16, "random_state": 0}}},
            {"knn": {"KNNClassifier": {"weights": "distance"}}},
        ],
        "param_grid": [
            {"pca__n_components": [8, 16], "knn__n_neighbors": [1, 3]},
            {"deskew": ["passthrough"], "knn__n_neighbors": [3]},
        ],
    }
    from_json = grid_file(_write(tmp_path, json.dumps(document), "g.json"), 64)
    from_yaml = grid_file(_write(tmp_path, json.dumps(document), "g.yaml"), 64)  # YAML reads JSON
    assert from_json.param_grid == from_yaml.param_grid == document["param_grid"]
    assert repr(from_json.estimator) == repr(from_yaml.estimator)
    assert from_json.estimator.get_params()["knn__weights"] == "distance"
    assert from_json.name == "g" and from_json.strategy == "grid" and not from_json.holds_gil


def test_distributions_are_scipy_frozen_ones_and_make_the_search_random(tmp_path):
    path = _write(
        tmp_path,
        PIPELINE + "param_grid:\n  knn__n_neighbors: {randint: [1, 9]}\n"
        "  pca__n_components: {uniform: [0.5, 0.4]}\n  knn__weights: [uniform]\nn_iter: 7\n",
    )
    preset = grid_file(path, 64)
    k = preset.param_grid["knn__n_neighbors"]
    assert preset.strategy == "random" and preset.n_iter == 7
    assert isinstance(k, type(scipy.stats.randint(1, 9))) and k.support() == (1, 8)
    assert preset.param_grid["pca__n_components"].support() == pytest.approx((0.5, 0.9))


def test_scientific_floats_are_floats_in_yaml(tmp_path):
    path = _write(
        tmp_path,
        "estimator: [{blur: GaussianBlur}, {knn: KNNClassifier}]\n"
        "param_grid: {blur__sigma: [1e-3, 2.5E+0, 0]}\n",
    )
    assert grid_file(path, 64).param_grid["blur__sigma"] == [0.001, 2.5, 0]


def test_a_step_may_be_left_out_or_replaced_in_the_grid(tmp_path):
    path = _write(
        tmp_path,
        PIPELINE + "param_grid:\n  deskew: [passthrough, Deskew, {GaussianBlur: {sigma: 1.0}}]\n",
    )
    values = grid_file(path, 64).param_grid["deskew"]
    assert values[0] == "passthrough" and isinstance(values[1], Deskew)
    assert values[2].get_params() == {"sigma": 1.0}


def test_presets_are_grid_files_a_user_can_copy(tmp_path):
    for name in ("book", "best", "deform"):
        preset = get_preset(name, 64)
        copy = grid_file(_write(tmp_path, get_preset_text(name), f"my-{name}.yaml"), 64)
        assert copy.name == f"my-{name}" and copy.param_grid == preset.param_grid
        assert repr(copy.estimator) == repr(preset.estimator)
        assert (copy.strategy, copy.holds_gil) == (preset.strategy, preset.holds_gil)
    assert isinstance(get_preset("deform").estimator.steps[-1][1], DeformationKNNClassifier)
    assert get_preset("deform").holds_gil and not get_preset("book").holds_gil


def get_preset_text(name: str) -> str:
    from mnistdist.model_selection import preset_path

    return preset_path(name).read_text()


def test_fit_to_images_leaves_out_only_sizes_the_images_cannot_have():
    best = get_preset("best", 64)
    sizes = {c.get("pca__n_components") for c in ParameterGrid(best.param_grid)} - {None}
    assert sizes == {30, 40}
    assert 70 in {c.get("pca__n_components") for c in ParameterGrid(get_preset("best").param_grid)}


def test_check_param_grid_takes_python_values():
    grid = check_param_grid(
        KNNClassifier(),
        {"n_neighbors": scipy.stats.randint(1, 5), "weights": ("uniform",)},
        random=True,
    )
    assert grid[0]["weights"] == ["uniform"] and hasattr(grid[0]["n_neighbors"], "rvs")
    with pytest.raises(OptionError, match=r"param_grid\.n_neighbors: a distribution needs"):
        check_param_grid(KNNClassifier(), {"n_neighbors": scipy.stats.randint(1, 5)})


def test_the_file_says_what_it_searches(tmp_path):
    text = textwrap.dedent(
        """\
        description: a quick look
        strategy: halving
        estimator: {KNNClassifier: {n_neighbors: 2}}
        param_grid: {weights: [uniform, distance]}
        """
    )
    preset = grid_file(_write(tmp_path, text), 64)
    assert (preset.description, preset.strategy) == ("a quick look", "halving")
    assert preset.estimator.n_neighbors == 2 and preset.plain_knn
