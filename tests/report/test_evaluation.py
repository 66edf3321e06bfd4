import numpy as np

from mnistdist.report import error_matrix, evaluate, most_confused_pair


def test_evaluate_counts():
    y_true = np.array([3, 3, 3, 5, 5, 5, 1, 1])
    y_pred = np.array([3, 5, 5, 5, 3, 5, 1, 1])
    ev = evaluate(y_true, y_pred)
    assert ev["classes"] == [1, 3, 5]
    assert ev["accuracy"] == 5 / 8
    assert ev["confusion_matrix"] == [[2, 0, 0], [0, 1, 2], [0, 1, 2]]
    np.testing.assert_allclose(ev["precision"], [1, 0.5, 0.5])
    np.testing.assert_allclose(ev["recall"], [1, 1 / 3, 2 / 3])
    assert ev["most_confused_pair"] == [3, 5]


def test_error_matrix_rows_and_diagonal():
    cm = np.array([[8, 2, 0], [1, 9, 0], [0, 5, 5]])
    errors = error_matrix(cm)
    assert np.all(np.diag(errors) == 0)
    np.testing.assert_allclose(errors[2], [0, 0.5, 0])
    assert most_confused_pair(cm) == (1, 2)
