"""notebooks/chapter3_on_dask.ipynb, executed top to bottom on a real kernel (on the digits)."""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "chapter3_on_dask.ipynb"


def _text(cell) -> str:
    """Everything a code cell showed: printed text, results and errors, as one string."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        data = output.get("data", {})
        parts.append(data.get("text/plain", "") + data.get("text/html", ""))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("MNISTDIST_NOTEBOOK_DATASET", "digits")
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)  # the embedded cluster
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path_factory.mktemp("notebook"))}},
    )
    try:
        client.execute()  # raises CellExecutionError, with the cell and its traceback
    finally:
        monkeypatch.undo()
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _cell(cells, source: str):
    return next(cell for cell in cells if source in cell.source)


def test_notebook_runs_top_to_bottom_without_errors(executed):
    for cell in executed:
        assert all(output["output_type"] != "error" for output in cell.get("outputs", []))
        assert cell.get("execution_count"), cell.source  # every cell ran


def test_notebook_reads_its_parameters_from_the_environment(executed):
    assert "parameters" in executed[0].metadata.get("tags", [])
    assert "'source': 'sklearn:load_digits'" in _text(_cell(executed, "dataset.summary()"))


def test_notebook_shows_the_client_widget_and_dashboard_link(executed):
    widget = _cell(executed, "client = session.enter_context")
    html = "".join(o.get("data", {}).get("text/html", "") for o in widget.outputs)
    assert "Client" in html and "Dashboard" in html
    assert "dashboard: http://" in _text(_cell(executed, "client.dashboard_link"))


def test_notebook_shows_progress_figures_and_results(executed):
    search = _text(_cell(executed, "neighbors_search(dataset.X_train"))
    assert "100%" in search and "left" in search  # the search's progress bar, with its ETA
    assert "mean CV accuracy 0.9" in search
    for source in ("search_heatmap(cv", "error_figure(error_matrix"):
        images = [o for o in _cell(executed, source).outputs if "image/png" in o.get("data", {})]
        assert len(images) == 1, source
    assert "test accuracy 0.9" in _text(_cell(executed, "evaluation = evaluate("))
    augmented = _text(_cell(executed, "augment_shifts(dataset.X_train"))
    assert augmented.startswith("7185 training images: test accuracy 0.9"), augmented
    assert "sgd5_precision" in _text(_cell(executed, "detector(X_train"))
