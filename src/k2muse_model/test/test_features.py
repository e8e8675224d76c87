"""The one definition of the hip_velocity model input."""

import numpy as np
import pytest
from k2muse_model.features import angular_velocity


def test_backward_difference_with_the_first_sample_repeating_the_second():
    angle = np.array([0.0, 0.01, 0.03, 0.06])
    np.testing.assert_allclose(angular_velocity(angle, 100.0), [1.0, 1.0, 2.0, 3.0])


def test_irregular_stamps_divide_by_each_step():
    angle = np.array([[0.0, 1.0], [0.02, 1.0], [0.03, 0.9]])
    time_s = np.array([0.0, 0.02, 0.025])
    np.testing.assert_allclose(angular_velocity(angle, time_s=time_s),
                               [[1.0, 0.0], [1.0, 0.0], [2.0, -20.0]])


def test_samples_along_another_axis_and_local_nan():
    angle = np.array([[0.0, 0.1, np.nan, 0.3, 0.4]])
    velocity = angular_velocity(angle, 10.0, axis=1)
    np.testing.assert_allclose(velocity, [[1.0, 1.0, np.nan, np.nan, 1.0]])


def test_too_short_or_ambiguous_input():
    assert np.isnan(angular_velocity(np.array([0.2]), 100.0)).all()
    with pytest.raises(ValueError, match="exactly one of sample_rate_hz and time_s"):
        angular_velocity(np.zeros(3))
    with pytest.raises(ValueError, match="time_s has shape"):
        angular_velocity(np.zeros(3), time_s=np.arange(4.0))
