"""Folds over trials from `k2muse import` (unknown speed, condition and trial number).

Uses the shared real gait-lab c3d files (../shared/testdata/c3d), imported as one participant.
"""

import math
from pathlib import Path

import pytest
from k2muse_dataset.importer import import_c3d_files
from k2muse_learning.training import TrainingConfig, assign_folds, plan_folds
from k2muse_learning.windows import load_legs

REAL_C3D = Path(__file__).resolve().parents[4] / "shared" / "testdata" / "c3d"


@pytest.fixture(scope="module")
def imported_legs(tmp_path_factory):
    if not REAL_C3D.is_dir():
        pytest.skip(f"real c3d test data not found at {REAL_C3D}")
    out = tmp_path_factory.mktemp("imported")
    import_c3d_files(REAL_C3D, out, {"participant": "S1"})
    return load_legs(out / "trials", ["hip_angle", "hip_velocity"])


def test_trial_folds_group_unknown_speeds_together(imported_legs):
    trials = {leg.trial_id for leg in imported_legs}
    assert len(trials) == 7
    assert all(math.isnan(leg.speed_m_s) and leg.trial == 0 for leg in imported_legs)
    folds = assign_folds(imported_legs, "trials", 5)
    assert sorted(folds) == sorted(trials)
    assert sorted(folds.values()) == [0, 0, 1, 1, 2, 3, 4]  # 7 trials dealt over 5 folds
    tasks = plan_folds(imported_legs, TrainingConfig(folds=5))
    assert [task.fold for task in tasks] == [0, 1, 2, 3, 4]
    for task in tasks:  # whole trials held out, never shared with training
        held_out = {leg.trial_id for leg in task.test}
        assert held_out and not held_out & {leg.trial_id for leg in task.train}
