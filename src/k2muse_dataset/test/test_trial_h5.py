import dataclasses
import json

import h5py
import numpy as np
import pytest
from k2muse_dataset.trial_h5 import (
    Trial,
    TrialFileError,
    iter_trial_files,
    read_trial_h5,
    stored_form,
    write_trial_h5,
)


def _trial(n=50, emg=True, aus=False):
    rng = np.random.default_rng(0)
    joint = {j: rng.normal(size=(n, 2, 3)) for j in ("hip", "knee", "ankle")}
    return Trial(
        participant="P07", condition="ShiftInitial", mode="DS", incline_deg=-10.0,
        speed_m_s=1.5, trial=4, body_mass_kg=61.5, synthetic=True,
        time_s=np.arange(n) / 100.0, angles_rad=joint,
        moments_nm_per_kg={j: v * 0.5 for j, v in joint.items()},
        event_time_s=np.array([0.3, 0.1]), event_frame=np.array([30, 10]),
        event_side=np.array([1, 0]), event_kind=np.array([0, 1]),
        strides={"left": np.array([[1, 20]]), "right": np.zeros((0, 2), np.int64)},
        emg_uv=rng.normal(size=(1000, 13)).astype(np.float32) if emg else None,
        emg_channel_names=[f"c{i}" for i in range(13)] if emg else None,
        aus_frames=np.ones((3, 4, 1000), np.float32) if aus else None,
        source_files=["a.c3d"])


def test_round_trip_keeps_every_field(tmp_path):
    original = _trial(aus=True)
    path = write_trial_h5(tmp_path / "P07" / "x.h5", original)
    back = read_trial_h5(path)
    assert (back.participant, back.condition, back.mode, back.trial) == ("P07", "ShiftInitial",
                                                                         "DS", 4)
    assert back.mode_key == "DS_10" and back.incline_deg == -10.0 and back.synthetic
    np.testing.assert_array_equal(back.angles_rad["knee"], original.angles_rad["knee"])
    np.testing.assert_array_equal(back.emg_uv, original.emg_uv)
    assert back.aus_frames.shape == (3, 4, 1000)
    # events are stored sorted by time
    np.testing.assert_array_equal(back.event_time_s, [0.1, 0.3])
    np.testing.assert_array_equal(back.event_side, [0, 1])
    assert back.strides["right"].shape == (0, 2)
    assert back.source_files == ["a.c3d"]
    with h5py.File(path) as f:
        assert f.attrs["mode_key"] == "DS_10"
        assert json.loads(f.attrs["source_files"]) == ["a.c3d"]
        assert "aus" in f and f["emg"].attrs["sample_rate_hz"] == 2000


def _assert_same(expected, actual, where):
    if isinstance(expected, dict):
        assert sorted(expected) == sorted(actual), where
        for key in expected:
            _assert_same(expected[key], actual[key], f"{where}/{key}")
    elif isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray) and actual.dtype == expected.dtype, where
        np.testing.assert_array_equal(actual, expected, err_msg=where)
    else:
        assert actual == expected and type(actual) is type(expected), where


def test_stored_form_is_what_the_file_reads_back(tmp_path):
    """Processing builds the participant .mat from stored_form instead of re-reading files."""
    original = _trial(aus=True)
    original.angles_rad = {j: v.astype(np.float32) for j, v in original.angles_rad.items()}
    original.aus_frames = np.full((3, 4, 1000), 7, np.int16)
    del original.strides["right"]
    original.powers_w_per_kg = {"knee": np.zeros((50, 2, 3))}
    back = read_trial_h5(write_trial_h5(tmp_path / "t.h5", original))
    stored = stored_form(original)
    for field in dataclasses.fields(Trial):
        _assert_same(getattr(back, field.name), getattr(stored, field.name), field.name)
    assert stored.event_time_s.tolist() == [0.1, 0.3] and stored.angles_rad["hip"].dtype == "<f8"
    assert original.event_time_s.tolist() == [0.3, 0.1]  # the caller's trial is left alone


def test_missing_modalities_are_absent_groups(tmp_path):
    path = write_trial_h5(tmp_path / "t.h5", _trial(emg=False))
    with h5py.File(path) as f:
        assert "emg" not in f and "aus" not in f
    assert read_trial_h5(path).emg_uv is None


def test_bad_shape_is_rejected_and_nothing_written(tmp_path):
    trial = _trial()
    trial.angles_rad["hip"] = trial.angles_rad["hip"][:, :, :2]
    with pytest.raises(TrialFileError, match="hip"):
        write_trial_h5(tmp_path / "t.h5", trial)
    assert list(tmp_path.iterdir()) == []


def test_reading_a_foreign_file_names_it(tmp_path):
    bad = tmp_path / "other.h5"
    with h5py.File(bad, "w") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(TrialFileError, match="other.h5"):
        read_trial_h5(bad)
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(TrialFileError, match="text.h5"):
        read_trial_h5(text)


def test_iter_trial_files_sorted_and_skips_temporaries(tmp_path):
    for name in ("b/2.h5", "a/1.h5", "a/.1.h5.part.h5"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in iter_trial_files(tmp_path)] == [
        "a/1.h5", "b/2.h5"]
