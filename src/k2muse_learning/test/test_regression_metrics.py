"""TCN scoring metrics (scikit-learn underneath) on hand-checked numbers."""

import math

import numpy as np
from k2muse_learning.training import regression_metrics


def test_rmse_and_r2_of_a_known_error():
    metrics = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert math.isclose(metrics["rmse_nm_per_kg"], math.sqrt(4.0 / 3.0))
    assert math.isclose(metrics["r2"], 1.0 - 4.0 / 2.0)


def test_undefined_scores_are_nan_not_an_error():
    constant = regression_metrics(np.ones(4), np.array([1.0, 1.0, 1.0, 2.0]))
    assert math.isclose(constant["rmse_nm_per_kg"], 0.5) and math.isnan(constant["r2"])
    empty = regression_metrics(np.zeros(0), np.zeros(0))
    assert math.isnan(empty["rmse_nm_per_kg"]) and math.isnan(empty["r2"])
