"""Generated release -> real readers -> trial HDF5 / processed .mat / report."""

import json

import numpy as np
from k2muse_dataset.c3d_reader import read_c3d
from k2muse_dataset.emg_reader import read_noraxon_mat
from k2muse_dataset.mat_io import is_mat73, load_mat
from k2muse_dataset.participants import read_participant_info
from k2muse_dataset.process import process_release
from k2muse_dataset.trial_h5 import iter_trial_files, read_trial_h5


def test_generated_layout_and_synthetic_markers(release):
    c3ds = sorted((release / "SourceData/Vicon").rglob("*.c3d"))
    assert len(c3ds) == 12
    assert c3ds[0].relative_to(release / "SourceData/Vicon").as_posix() == \
        "P01/Ideal/P01+Ideal+AS+10+1+1.c3d"
    assert (release / "SourceData/ELONXI/P01/Ideal/LG_0/US_Ch4_S_1_Trial_3.txt").is_file()
    assert (release / "SourceData/Noraxon/P02/Ideal-AS-10-1-2.mat").is_file()
    assert "SYNTHETIC" in (release / "SYNTHETIC_DATA.txt").read_text()
    trial = read_c3d(c3ds[0])
    assert trial.synthetic and trial.units["moment"] == "Nmm"
    assert 52 <= trial.body_mass_kg <= 88
    # moments written in Nmm/kg, read back in N·m/kg
    assert 0.5 < np.max(trial.moments_nm_per_kg["hip"][:, :, 0]) < 2.0
    assert not is_mat73(release / "SourceData/Noraxon/P01/Ideal-LG-0-1-1.mat")
    assert is_mat73(release / "SourceData/Noraxon/P02/Ideal-LG-0-1-1.mat")
    for pid in ("P01", "P02"):
        emg = read_noraxon_mat(release / f"SourceData/Noraxon/{pid}/Ideal-LG-0-1-1.mat")
        assert emg.signals_uv.shape == (16000, 13) and emg.sample_rate_hz == 2000
        assert emg.channel_names[0] == "R_TA" and emg.synthetic
    info = read_participant_info(release / "ParticipantInformation.xlsx")
    assert set(info) == {"P01", "P02"} and 1.5 < info["P01"]["height_m"] < 1.9


def test_every_trial_processed_and_reported(processed):
    out, report = processed
    rows = {r["trial"]: r for r in report["rows"]}
    trial_rows = [r for t, r in rows.items() if "_Trial_" in t]
    assert len(trial_rows) == 12 and all(r["status"] == "processed" for r in trial_rows)
    # the generator's short-AUS trial is reported, not silently accepted
    short = rows["P01_Ideal_LG_0_S_1_Trial_3"]["reasons"]
    assert any("too few AUS frames" in r for r in short)
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["summary"]["processed"] == 14  # 12 trials + 2 processed .mat
    assert "P02_Ideal_LG_0_S_1_Trial_1" in (out / "report.csv").read_text()


def test_trial_files_follow_the_contract(processed):
    out, _ = processed
    files = list(iter_trial_files(out / "trials"))
    assert len(files) == 12
    assert files[0].relative_to(out).as_posix() == \
        "trials/P01/Ideal/P01_Ideal_AS_10_S_1_Trial_1.h5"
    trial = read_trial_h5(files[0])
    assert trial.synthetic and trial.mode_key == "AS_10" and trial.incline_deg == 10.0
    assert trial.sample_rate_hz == 100 and trial.n_samples == 800
    assert trial.time_s[0] == 0.0
    assert trial.emg_uv.shape == (16000, 13) and trial.aus_frames.shape == (160, 4, 1000)
    hip = trial.angles_rad["hip"][:, 1, 0]
    moment = trial.moments_nm_per_kg["hip"][:, 1, 0]
    # physiology: hip flexion near heel strike, extension in late stance (ascent adds flexion)
    strides = trial.strides["right"]
    assert len(strides) >= 4
    at_strike = np.degrees(hip[strides[:, 0]])
    assert np.all((at_strike > 20) & (at_strike < 50))
    assert np.degrees(hip.min()) < 5
    # extension moment early stance, flexion moment in late stance
    early = [moment[s:s + int(0.15 * (e - s))].max() for s, e in strides]
    late = [moment[s + int(0.4 * (e - s)):s + int(0.6 * (e - s))].min() for s, e in strides]
    assert np.all(np.array(early) > 0.5) and np.all(np.array(late) < -0.4)
    # events sorted; right heel strikes are the stride starts
    assert np.all(np.diff(trial.event_time_s) >= 0)
    strikes = trial.event_frame[(trial.event_side == 1) & (trial.event_kind == 0)]
    assert set(strides[:, 0]) <= set(strikes)


def test_processed_mat_hierarchy_v5_and_v73(processed, release):
    out, _ = processed
    mat = load_mat(out / "processed/P01.mat")
    assert mat["synthetic"] == 1
    trial = mat["P01"]["NormalizedData"]["Ideal"]["LG_0"]["S_1"]["Trial_2"]
    hip = trial["Angles"]["LHipAngles"]
    assert hip["rsGaitData"].shape[:2] == (101, 3) and hip["rsGaitData"].shape[2] >= 4
    np.testing.assert_allclose(hip["MeanValues"], hip["rsGaitData"].mean(axis=2))
    assert trial["Events"]["LStartFrame"].size == hip["rsGaitData"].shape[2]
    original = mat["P01"]["OriginalData"]["Ideal"]["LG_0"]["S_1"]["Trial_2"]
    assert original["Angles"]["LHipAngles"].shape == (800, 3)
    assert original["Events"]["EventFrame"]["LeftFootStrike"].min() >= 1
    summary = mat["P01"]["NormalizedData"]["Ideal"]["LG_0"]["S_1"]["AllTrials"]
    assert summary["Moments"]["RHipMoment"]["MeanValues"].shape == (101, 3)
    # the generator's own ProcessedData: P01 v5, P02 v7.3, same hierarchy
    assert is_mat73(release / "ProcessedData/P02.mat")
    released = load_mat(release / "ProcessedData/P02.mat")
    node = released["P02"]["NormalizedData"]["Ideal"]["AS_10"]["S_1"]["Trial_1"]
    assert node["Moments"]["RHipMoment"]["rsGaitData"].shape[:2] == (101, 3)
    assert released["synthetic"] == 1


def test_rerun_resumes_and_force_redoes(processed, release):
    out, _ = processed
    second = process_release(release, out, jobs=1)
    statuses = {r["status"] for r in second["rows"] if "_Trial_" in r["trial"]}
    assert statuses == {"up-to-date"}
    assert not any(r["trial"] in ("P01", "P02") for r in second["rows"])
