import numpy as np
import pytest
from k2muse_dataset.gait import mean_sd, normalise_strides, segment_strides
from k2muse_dataset.naming import (
    FileNameError,
    TrialKey,
    parse_elonxi_name,
    parse_noraxon_name,
    parse_speed,
    parse_vicon_name,
)

KEY = TrialKey("P01", "Fatigue", "LG", 0, 1.0, 1)


@pytest.mark.parametrize("name", ["P01+Fatigue+LG+0+1+1.c3d", "p1+fatigue+lg+0+1.0+1.c3d",
                                  "P01_Fatigue_LG_0_1x0_Trial_1.c3d",
                                  "P01-Fatigue-LG-0-S_1-1.c3d"])
def test_vicon_variants(name):
    assert parse_vicon_name(f"P01/Fatigue/{name}") == KEY


def test_vicon_shift_interday_and_speed_half():
    key = parse_vicon_name("P05+Inter-day+DS+10+0.5+3.c3d")
    assert (key.condition, key.incline_deg, key.speed_key, key.mode_key) == (
        "InterDay", -10.0, "S_0x5", "DS_10")
    assert parse_vicon_name("P05+ShiftUpward+AS+5+1x5+2.c3d").condition == "ShiftUpward"


@pytest.mark.parametrize("token,speed", [("0.5", .5), ("0x5", .5), ("05", .5), ("S_0x5", .5),
                                         ("1", 1.0), ("1x0", 1.0), ("1.0", 1.0), ("S_1", 1.0),
                                         ("1.5", 1.5), ("1x5", 1.5), ("S_1X5", 1.5)])
def test_speed_tokens(token, speed):
    assert parse_speed(token) == speed


@pytest.mark.parametrize("path", ["P01/Fatigue/LG_0/US_Ch1_S_1_Trial_1.txt",
                                  "P01/Fatigue/LG_0/US_CH1_S_1x0_Trial_1.txt",
                                  "P1/fatigue/lg_0/us_ch1_s_1_trial_1.txt"])
def test_elonxi_variants(path):
    assert parse_elonxi_name(path) == (KEY, 1)


@pytest.mark.parametrize("path", ["P01/Fatigue-LG-0-1-1.mat", "P01/Fatigue-LG-0-1x0-1.mat"])
def test_noraxon_variants(path):
    assert parse_noraxon_name(path) == KEY
    assert parse_noraxon_name("P02/Inter-day-AS-5-1x5-2.mat").condition == "InterDay"


def test_release_paths_round_trip():
    key = TrialKey("P12", "ShiftLeftward", "AS", 10, 1.5, 4)
    assert parse_vicon_name(key.vicon_relpath()) == key
    assert parse_elonxi_name(key.elonxi_relpath(3)) == (key, 3)
    assert parse_noraxon_name(key.noraxon_relpath()) == key
    assert key.stem == "P12_ShiftLeftward_AS_10_S_1x5_Trial_4"


@pytest.mark.parametrize("name", ["P01+Fatigue+XX+0+1+1.c3d", "P01+Fatigue+LG+0+2+1.c3d",
                                  "P01+Sleepy+LG+0+1+1.c3d", "P01+Fatigue+LG+5+1+1.c3d",
                                  "P01+Fatigue+AS+0+1+1.c3d", "notes.c3d"])
def test_bad_names_are_named_in_the_error(name):
    with pytest.raises(FileNameError, match=name.split("+")[0].replace(".c3d", "")):
        parse_vicon_name(name)


def _events(strikes_l, strikes_r, offset=0.6, period=100):
    rows = [(f, 0, 0) for f in strikes_l] + [(f, 1, 0) for f in strikes_r]
    rows += [(int(f + offset * period), s, 1) for f, s, _ in list(rows)]
    frames, sides, kinds = (np.array(c) for c in zip(*sorted(rows), strict=True))
    return frames, sides, kinds


def test_regular_strides_all_accepted():
    seg = segment_strides(*_events([0, 100, 200, 300], [50, 150, 250, 350]), 100.0)
    np.testing.assert_array_equal(seg.strides["left"], [[0, 100], [100, 200], [200, 300]])
    assert seg.issues == [] and seg.rejected == 0


def test_missing_strike_doubles_stride_and_is_rejected():
    seg = segment_strides(*_events([0, 100, 300, 400, 500], [50, 150, 250]), 100.0)
    np.testing.assert_array_equal(seg.strides["left"], [[0, 100], [300, 400], [400, 500]])
    assert seg.rejected == 1 and "stride time 2.00 s vs median 1.00 s" in seg.issues[0]


def test_doubled_strike_dropped_and_reported():
    frames, sides, kinds = _events([0, 100, 200, 300], [50, 150, 250])
    frames = np.append(frames, 103)
    sides, kinds = np.append(sides, 0), np.append(kinds, 0)
    seg = segment_strides(frames, sides, kinds, 100.0)
    assert any("doubled heel strike at 1.03 s" in i for i in seg.issues)
    assert len(seg.strides["left"]) == 3


def test_missing_foot_off_rejects_stride_and_no_events_reported():
    frames, sides, kinds = _events([0, 100, 200], [50, 150, 250])
    keep = ~((sides == 0) & (kinds == 1) & (frames == 160))
    seg = segment_strides(frames[keep], sides[keep], kinds[keep], 100.0)
    assert "0 foot-off events" in " ".join(seg.issues) and len(seg.strides["left"]) == 1
    empty = segment_strides(np.array([]), np.array([]), np.array([]), 100.0)
    assert empty.issues == ["no gait events"] and empty.strides["right"].shape == (0, 2)


def test_time_normalisation_and_mean_sd():
    t = np.arange(300.0)
    signal = np.stack([np.sin(2 * np.pi * t / 100), t], axis=1)
    rs = normalise_strides(signal, np.array([[0, 100], [100, 200], [150, 250]]), 101)
    assert rs.shape == (101, 2, 3)
    np.testing.assert_allclose(rs[:, 0, 0], np.sin(2 * np.pi * np.arange(101) / 100), atol=1e-12)
    np.testing.assert_allclose(rs[[0, -1], 1, 2], [150, 250])
    mean, sd = mean_sd(rs[:, :1, :2])
    np.testing.assert_allclose(sd, 0, atol=1e-12)
    assert normalise_strides(signal, np.array([[0, 99]]), 51).shape == (51, 2, 1)
