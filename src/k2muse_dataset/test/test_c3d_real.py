"""The reader against seven real gait-lab c3d files with their documented quirks."""

import numpy as np
import pytest
from k2muse_dataset.c3d_reader import read_c3d

# file: (rate Hz, frames, first frame, events kept, body mass or None)
EXPECTED = {
    "Biomechanical-ToolKit_BTKData_PiG_Motion-FlatFoot-Full.c3d": (100, 315, 147, 12, 47.5),
    "Biomechanical-ToolKit_BTKData_PiG_Motion3_FF.c3d": (100, 293, 724, 12, 74.0),
    "Biomechanical-ToolKit_BTKData_PlugInC3D.c3d": (60, 281, 0, 8, None),
    "biomechanics-foundation_c3dio_gait-pig.c3d": (50, 142, 0, 9, None),
    "biomechanics-foundation_c3dio_pyCGM2_lower_limb_CGM24_Walking01.c3d":
        (100, 493, 62, 17, 77.625),
    "tsalemink_C3D-parser_MH0222_BP06.c3d": (100, 279, 397, 12, 81.0),
    "tsalemink_C3D-parser_S4-AMGait03.c3d": (100, 215, 151, 8, 53.5),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_rates_frames_events_mass(real_c3d_dir, name):
    rate, frames, first, n_events, mass = EXPECTED[name]
    trial = read_c3d(real_c3d_dir / name)
    assert trial.point_rate_hz == rate
    assert trial.n_frames == frames and trial.first_frame == first
    assert len(trial.events) == n_events
    assert trial.body_mass_kg == mass
    assert trial.units["moment"] == "Nmm" and trial.units["angle"] == "deg"
    # events sorted, inside the recording, both sides, strikes and offs
    assert np.all(np.diff(trial.events.time_s) >= 0)
    assert trial.events.frame.min() >= 0 and trial.events.frame.max() < frames
    assert set(trial.events.side) == {0, 1} and set(trial.events.kind) == {0, 1}
    # time base: event times agree with their frame within one sample
    np.testing.assert_allclose(trial.time_s[trial.events.frame], trial.events.time_s,
                               atol=0.51 / rate)
    hip = trial.angles_rad["hip"][:, :, 0]
    assert hip.shape == (frames, 2)
    # Plug-in Gait hip flexion: peak 15-75 deg (PlugInC3D reaches ~70), radians after conversion
    peak = np.nanpercentile(hip, 95)
    assert np.radians(15) < peak < np.radians(75)
    # Nmm/kg -> N·m/kg: hip sagittal moment peaks around 0.5-2 N·m/kg
    moment = np.nanmax(np.abs(trial.moments_nm_per_kg["hip"][:, :, 0]))
    assert 0.5 < moment < 2.5


def test_flattened_event_times_and_side_counts(real_c3d_dir):
    trial = read_c3d(real_c3d_dir / "Biomechanical-ToolKit_BTKData_PiG_Motion-FlatFoot-Full.c3d")
    np.testing.assert_allclose(trial.events.time_s[[0, -1]], [1.53, 4.59], atol=1e-4)
    # EVENT:CONTEXTS holds 5 Left and 7 Right
    assert np.count_nonzero(trial.events.side == 0) == 5
    assert np.count_nonzero(trial.events.side == 1) == 7


def test_general_context_event_is_ignored_and_reported(real_c3d_dir):
    trial = read_c3d(real_c3d_dir /
                     "biomechanics-foundation_c3dio_pyCGM2_lower_limb_CGM24_Walking01.c3d")
    assert len(trial.events.ignored) == 1 and "General/Left-FP" in trial.events.ignored[0]
    # counts from the EVENT group: 8 left, 9 right
    assert np.count_nonzero(trial.events.side == 0) == 8
    assert np.count_nonzero(trial.events.side == 1) == 9


def test_plain_label_wins_over_cgm_duplicate(real_c3d_dir):
    import ezc3d
    path = real_c3d_dir / "biomechanics-foundation_c3dio_pyCGM2_lower_limb_CGM24_Walking01.c3d"
    raw = ezc3d.c3d(str(path))
    labels = raw["parameters"]["POINT"]["LABELS"]["value"]
    plain = raw["data"]["points"][0, labels.index("LHipAngles"), :]
    trial = read_c3d(path)
    np.testing.assert_allclose(trial.angles_rad["hip"][:, 0, 0], np.radians(plain))


def test_subject_prefix_and_v_suffix(real_c3d_dir):
    prefixed = read_c3d(real_c3d_dir / "biomechanics-foundation_c3dio_gait-pig.c3d")
    assert {"hip", "knee", "ankle"} <= set(prefixed.angles_rad)
    suffixed = read_c3d(real_c3d_dir / "Biomechanical-ToolKit_BTKData_PiG_Motion3_FF.c3d")
    assert not np.all(np.isnan(suffixed.angles_rad["hip"]))


def test_force_plate_analogs(real_c3d_dir):
    trial = read_c3d(real_c3d_dir / "tsalemink_C3D-parser_MH0222_BP06.c3d")
    assert trial.analog_rate_hz == 1000 and trial.analogs.shape == (2790, 24)
    peaks = [np.max(np.abs(trial.force_plate(p)[:, 2])) for p in (1, 2, 3, 4)]
    assert trial.force_plate(2).shape == (2790, 3)
    # plates 2 and 3 were stepped on: vertical force near body weight (81 kg), 1 and 4 empty
    assert peaks[0] == peaks[3] == 0.0
    assert all(0.9 * 81 * 9.81 < p < 1.5 * 81 * 9.81 for p in peaks[1:3])
    with pytest.raises(Exception, match="MH0222_BP06.c3d.*Fx5"):
        trial.force_plate(5)
