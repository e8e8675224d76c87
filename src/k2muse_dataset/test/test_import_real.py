"""`k2muse import` and the per-channel c3d rules on the shared real gait-lab files.

Label, unit, artefact and gap variants are made by editing a COPY of a real file with ezc3d in
tmp_path; the shared files are only read.
"""

import json
import math

import ezc3d
import h5py
import numpy as np
import pytest
from k2muse_dataset.c3d_reader import C3DError, read_c3d
from k2muse_dataset.cli import main
from k2muse_dataset.gait import segment_strides
from k2muse_dataset.importer import import_c3d_files, read_sidecar
from k2muse_dataset.naming import parse_model_output_label
from k2muse_dataset.trial_h5 import read_trial_h5

PIG_V = "Biomechanical-ToolKit_BTKData_PiG_Motion3_FF.c3d"  # Bodymass 74, 'V' angle labels
NO_MASS = "biomechanics-foundation_c3dio_gait-pig.c3d"  # A22: prefix, no PROCESSING group
FMC = "tsalemink_C3D-parser_MH0222_BP06.c3d"  # Bodymass 81, plain labels, 100 Hz
CGM = "biomechanics-foundation_c3dio_pyCGM2_lower_limb_CGM24_Walking01.c3d"


def edited_copy(real_c3d_dir, tmp_path, name, edit, new_name=None):
    """Write a copy of a shared file after ``edit(c3d, labels)`` changed it; return its path."""
    c3d = ezc3d.c3d(str(real_c3d_dir / name))
    labels = list(c3d["parameters"]["POINT"]["LABELS"]["value"])
    edit(c3d, labels)
    c3d["parameters"]["POINT"]["LABELS"]["value"] = labels
    target = tmp_path / (new_name or name)
    c3d.write(str(target))
    return target


def raw_sagittal(path, label):
    """Independent read: the first component of one point label, as ezc3d gives it."""
    c3d = ezc3d.c3d(str(path))
    labels = list(c3d["parameters"]["POINT"]["LABELS"]["value"])
    return c3d["data"]["points"][0, labels.index(label), :]


def test_model_output_labels_are_parsed_by_pattern():
    cases = {"A22:LHipAngles": ("A22:", 0, "hip", "angle", ""),
             "RHipMoment_CGM_2.4": ("", 1, "hip", "moment", "_CGM_2.4"),
             "LHipAnglesV": ("", 0, "hip", "angle", "V"),
             "Sub1_RKneePower_M": ("Sub1_", 1, "knee", "power", "_M"),
             "LAnkleForce": ("", 0, "ankle", "force", "")}
    for label, expected in cases.items():
        parsed = parse_model_output_label(label)
        assert (parsed.prefix, parsed.side, parsed.joint, parsed.kind, parsed.suffix) == expected
    for other in ("LASI", "LNewPelAngles", "XLHipAngles", "LHipJoint"):
        assert parse_model_output_label(other) is None


def test_import_folder_of_real_files_stores_unknowns_and_matches_ezc3d(real_c3d_dir, tmp_path):
    result = import_c3d_files(real_c3d_dir, tmp_path / "out")
    rows = {r["trial"]: r for r in result["rows"]}
    assert len(rows) == 7 and all(r["status"] == "processed" for r in rows.values())
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["summary"] == {"processed": 7}

    path = rows[NO_MASS]["output"]
    assert path.endswith("trials/A22/unknown/biomechanics-foundation_c3dio_gait-pig.h5")
    trial = read_trial_h5(path)
    assert (trial.participant, trial.condition, trial.mode, trial.trial) == \
        ("A22", "unknown", "unknown", 0)
    assert math.isnan(trial.incline_deg) and math.isnan(trial.speed_m_s)
    assert math.isnan(trial.body_mass_kg) and trial.mode_key == "unknown"
    with h5py.File(path) as f:
        sources = json.loads(f.attrs["metadata_sources"])
        assert sources["participant"] == "c3d SUBJECTS:NAMES"
        assert sources["body_mass_kg"] == "unknown" and sources["speed_m_s"] == "unknown"
        assert f["kinematics/hip_angle_rad"].attrs["left_source_label"] == "A22:LHipAngles"
        assert f["kinetics/hip_moment_nm_per_kg"].attrs["right_source_unit"] == "Nmm"
    assert any("body mass unknown" in r for r in rows[NO_MASS]["reasons"])

    fmc = read_trial_h5(rows[FMC]["output"])
    assert fmc.body_mass_kg == 81.0 and fmc.participant == "MH0222_BP"
    for side, label in ((0, "LHipAngles"), (1, "RHipAngles")):
        np.testing.assert_allclose(fmc.angles_rad["hip"][:, side, 0],
                                   np.radians(raw_sagittal(real_c3d_dir / FMC, label)))
    moment = raw_sagittal(real_c3d_dir / FMC, "RHipMoment") / 1000.0
    np.testing.assert_allclose(fmc.moments_nm_per_kg["hip"][:, 1, 0], moment)
    # plain label preferred over the CGM2.4 copy, and the choice is reported
    cgm = rows[CGM]["reasons"]
    assert any("from 'LHipMoment' (candidates ['LHipMoment', 'LHipMoment_CGM_2.4'])" in r
               for r in cgm)


def test_plot_of_imported_files_pools_unknown_speeds(real_c3d_dir, tmp_path):
    from k2muse_dataset.plots import plot_condition_means

    rows = import_c3d_files(real_c3d_dir, tmp_path / "out")["rows"]
    svg, = plot_condition_means([r["output"] for r in rows], tmp_path, ("svg",))
    text = svg.read_text()
    assert "unknown speed (n=7)" in text  # one curve per participant, all seven pooled
    assert "nan m/s" not in text and "unknown°" not in text


def test_options_sidecar_and_body_mass_precedence(real_c3d_dir, tmp_path):
    single = import_c3d_files(real_c3d_dir / NO_MASS, tmp_path / "a",
                              {"participant": "S07", "mode": "LG", "speed_m_s": 1.2,
                               "trial": 2, "body_mass_kg": 61.0})
    trial = read_trial_h5(single["rows"][0]["output"])
    assert (trial.participant, trial.mode_key, trial.speed_m_s, trial.trial) == \
        ("S07", "LG_0", 1.2, 2)
    assert trial.body_mass_kg == 61.0
    with h5py.File(single["rows"][0]["output"]) as f:
        assert json.loads(f.attrs["metadata_sources"])["body_mass_kg"] == "given by the user"
        assert json.loads(f.attrs["metadata_sources"])["incline_deg"] == "implied by mode LG"

    sidecar = tmp_path / "meta.csv"
    sidecar.write_text(f"file,participant,mode,incline_deg,body_mass_kg\n{FMC},P9,AS,5,70\n")
    both = import_c3d_files(real_c3d_dir / FMC, tmp_path / "b", {"participant": "S07"}, sidecar)
    row = both["rows"][0]
    trial = read_trial_h5(row["output"])
    assert trial.participant == "P9" and trial.mode_key == "AS_5"  # the sidecar row wins
    assert trial.body_mass_kg == 81.0  # PROCESSING:Bodymass wins over any given mass
    assert any("70 kg given" in r and "81 kg is used" in r for r in row["reasons"])

    derived = import_c3d_files(real_c3d_dir / FMC, tmp_path / "c", {"incline_deg": -10})
    with h5py.File(derived["rows"][0]["output"]) as f:
        assert f.attrs["mode"] == "DS" and f.attrs["mode_key"] == "DS_10"
        assert json.loads(f.attrs["metadata_sources"])["mode"] == "implied by the incline's sign"

    yaml_sidecar = tmp_path / "meta.yaml"
    yaml_sidecar.write_text(f"{NO_MASS}:\n  mode: DS\n  incline_deg: 10\n  speed_m_s: 0.5\n")
    assert read_sidecar(yaml_sidecar)[NO_MASS] == {"mode": "DS", "incline_deg": 10.0,
                                                   "speed_m_s": 0.5}


@pytest.mark.parametrize("options, message", [
    ({"mode": "AS"}, "mode AS needs a non-zero incline_deg"),
    ({"mode": "LG", "incline_deg": 5}, "mode LG .* with incline 5"),
    ({"body_mass_kg": 3}, "body_mass_kg: 3 outside"),
    ({"participant": "../x"}, "not a plain name"),
    ({"mode": "stairs"}, "unknown walking mode"),
])
def test_bad_metadata_is_refused_with_its_origin(real_c3d_dir, tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        import_c3d_files(real_c3d_dir / FMC, tmp_path, options)


def test_sidecar_with_unknown_column_or_ragged_row_is_refused(tmp_path):
    sidecar = tmp_path / "meta.csv"
    sidecar.write_text("file,participant,weight\nx.c3d,P1,70\n")
    with pytest.raises(ValueError, match="meta.csv row 1 .*unknown metadata field.*weight"):
        read_sidecar(sidecar)
    sidecar.write_text("file,participant\nx.c3d,P1,70\n")
    with pytest.raises(ValueError, match="row 1 has more values than the header"):
        read_sidecar(sidecar)
    (tmp_path / "meta.yaml").write_text("- participant: P1\n")
    with pytest.raises(ValueError, match="row 1 has no 'file' value"):
        read_sidecar(tmp_path / "meta.yaml")


def test_model_output_suffix_and_prefix_variants(real_c3d_dir, tmp_path):
    def suffix_m(c3d, labels):
        for i, label in enumerate(labels):
            if label in ("LHipAnglesV", "RHipAnglesV"):
                labels[i] = label[:-1] + "_M"
            elif label in ("LHipMoment", "RHipMoment"):
                labels[i] = "Sub7:" + label + "_CGM_2.4"

    path = edited_copy(real_c3d_dir, tmp_path, PIG_V, suffix_m, "renamed anything.c3d")
    trial = read_c3d(path)
    assert trial.channels["LHipAngles"].label == "LHipAngles_M"
    assert trial.channels["RHipMoment"].label == "Sub7:RHipMoment_CGM_2.4"
    np.testing.assert_allclose(trial.angles_rad["hip"][:, 0, 0],
                               np.radians(raw_sagittal(real_c3d_dir / PIG_V, "LHipAnglesV")))


def test_preference_order_and_explicit_suffix(real_c3d_dir, tmp_path):
    path = real_c3d_dir / CGM
    assert read_c3d(path).channels["LHipAngles"].label == "LHipAngles"
    chosen = read_c3d(path, label_suffixes=("_CGM_2.4",))
    assert chosen.channels["LHipAngles"].label == "LHipAngles_CGM_2.4"
    np.testing.assert_allclose(chosen.angles_rad["hip"][:, 0, 0],
                               np.radians(raw_sagittal(path, "LHipAngles_CGM_2.4")))
    # a candidate without any data is never preferred (the CGM2.4 powers are all NaN)
    assert chosen.channels["LHipPower"].label == "LHipPower"

    def zero_fill(c3d, labels):  # Nexus' gap fill over the whole trial: no data either
        c3d["data"]["points"][:3, labels.index("LHipAngles_CGM_2.4"), :] = 0.0

    zeros = read_c3d(edited_copy(path.parent, tmp_path, CGM, zero_fill),
                     label_suffixes=("_CGM_2.4",))
    assert zeros.channels["LHipAngles"].label == "LHipAngles"
    assert zeros.channels["LHipAngles"].candidates == ["LHipAngles", "LHipAngles_CGM_2.4"]
    assert zeros.channels["RHipAngles"].label == "RHipAngles_CGM_2.4"


def test_missing_hip_angles_error_names_the_hip_labels(real_c3d_dir, tmp_path):
    def rename(c3d, labels):
        for i, label in enumerate(labels):
            if label in ("LHipAngles", "RHipAngles"):
                labels[i] = label.replace("Angles", "Flex")

    path = edited_copy(real_c3d_dir, tmp_path, FMC, rename)
    with pytest.raises(C3DError, match=r"hip-related labels found: \['LHipFlex', 'RHipFlex', "
                                       r"'LHipPower'"):
        read_c3d(path)


def test_artefact_span_is_nan_on_its_channel_only(real_c3d_dir, tmp_path):
    original = read_c3d(real_c3d_dir / PIG_V)
    finite = np.flatnonzero(np.isfinite(original.moments_nm_per_kg["hip"][:, 0, 0]))
    spike = finite[40:97]  # 57 frames of a measured stretch

    def spike_without_mass(c3d, labels):
        c3d["data"]["points"][0, labels.index("LHipMoment"), spike] = 61495.0
        del c3d["parameters"]["PROCESSING"]["Bodymass"]

    path = edited_copy(real_c3d_dir, tmp_path, PIG_V, spike_without_mass)
    out = import_c3d_files(path, tmp_path / "out")["rows"][0]
    trial = read_c3d(path)
    assert trial.body_mass_kg is None
    left, right = trial.moments_nm_per_kg["hip"][:, 0], trial.moments_nm_per_kg["hip"][:, 1]
    assert np.all(np.isnan(left[spike]))
    kept = np.setdiff1d(np.arange(trial.n_frames), spike)
    np.testing.assert_array_equal(left[kept], original.moments_nm_per_kg["hip"][kept, 0])
    np.testing.assert_array_equal(right, original.moments_nm_per_kg["hip"][:, 1])
    assert 1.0 < np.nanmax(np.abs(right[:, 0])) < 1.2  # a normal N·m/kg peak, not rescaled
    report = trial.channels["LHipMoment"]
    assert report.artefact_frames == 57 and report.normalisation.startswith("per kg")
    assert any("LHipMoment" in r and "57 implausible frames -> NaN (artefact)" in r
               for r in out["reasons"])
    with h5py.File(out["output"]) as f:
        attrs = f["kinetics/hip_moment_nm_per_kg"].attrs
        assert attrs["left_artefact_frames_in_source"] == 57
        assert attrs["right_artefact_frames_in_source"] == 0

    # a body mass given for the same file rescales nothing: every moment is per kg as written
    massed = import_c3d_files(path, tmp_path / "mass", {"body_mass_kg": 70})["rows"][0]
    with_mass = read_trial_h5(massed["output"])
    assert with_mass.body_mass_kg == 70.0
    expected = read_trial_h5(out["output"]).moments_nm_per_kg
    for joint, values in with_mass.moments_nm_per_kg.items():
        np.testing.assert_array_equal(values, expected[joint])
    assert not any("divided by body mass" in r for r in massed["reasons"])


def test_absolute_channel_divided_by_mass_or_refused(real_c3d_dir, tmp_path):
    original = read_c3d(real_c3d_dir / NO_MASS)

    def absolute_right(c3d, labels):
        c3d["data"]["points"][:3, labels.index("A22:RHipMoment"), :] *= 60.0

    path = edited_copy(real_c3d_dir, tmp_path, NO_MASS, absolute_right)
    refused = read_c3d(path)
    assert np.all(np.isnan(refused.moments_nm_per_kg["hip"][:, 1]))
    assert "body mass unknown" in refused.channels["RHipMoment"].refused
    np.testing.assert_allclose(refused.moments_nm_per_kg["hip"][:, 0],  # float32 rewrite
                               original.moments_nm_per_kg["hip"][:, 0], rtol=1e-6)

    divided = read_c3d(path, body_mass_kg=60.0)
    np.testing.assert_allclose(divided.moments_nm_per_kg["hip"],
                               original.moments_nm_per_kg["hip"], rtol=1e-3)
    assert divided.channels["RHipMoment"].normalisation.startswith("absolute")
    assert "divided by body mass 60 kg" in divided.channels["RHipMoment"].normalisation
    assert divided.channels["LHipMoment"].normalisation == "per kg as written (Plug-in Gait)"
    out = import_c3d_files(path, tmp_path / "out", {"body_mass_kg": 60})["rows"][0]
    with h5py.File(out["output"]) as f:
        attrs = f["kinetics/hip_moment_nm_per_kg"].attrs
        assert "divided by body mass 60 kg" in attrs["right_normalisation"]
        assert attrs["left_normalisation"] == "per kg as written (Plug-in Gait)"


def test_angles_beyond_180_degrees_are_artefacts(real_c3d_dir, tmp_path):
    def wrap(c3d, labels):
        c3d["data"]["points"][1, labels.index("RHipAngles"), 100:110] = 400.0

    trial = read_c3d(edited_copy(real_c3d_dir, tmp_path, FMC, wrap))
    assert trial.channels["RHipAngles"].artefact_frames == 10
    assert np.all(np.isnan(trial.angles_rad["hip"][100:110, 1]))
    assert np.all(np.isfinite(trial.angles_rad["hip"][100:110, 0]))


def test_zero_runs_are_gaps_and_strides_touching_them_are_rejected(real_c3d_dir, tmp_path):
    clean = import_c3d_files(real_c3d_dir / FMC, tmp_path / "clean")["rows"][0]
    left_strides = read_trial_h5(clean["output"]).strides["left"]
    assert len(left_strides) == 1
    start, end = (int(i) for i in left_strides[0])  # 100 Hz file: trial sample = c3d frame

    def zeros(c3d, labels):
        c3d["data"]["points"][:3, labels.index("LHipMoment"), start + 20:start + 40] = 0.0

    path = edited_copy(real_c3d_dir, tmp_path, FMC, zeros)
    assert read_c3d(path).channels["LHipMoment"].gap_frames == 20
    row = import_c3d_files(path, tmp_path / "gap")["rows"][0]
    trial = read_trial_h5(row["output"])
    assert np.all(np.isnan(trial.moments_nm_per_kg["hip"][start + 20:start + 40, 0]))
    assert len(trial.strides["left"]) == 0
    assert any(f"left: stride at {start / 100:.2f} s rejected: gap in hip moment (20 samples)"
               in r for r in row["reasons"])


def test_segment_strides_rejects_gaps_in_required_signals():
    frames = np.array([0, 60, 100, 160, 200])
    kinds = np.array([0, 1, 0, 1, 0])
    signal = np.zeros((250, 2))
    signal[150, 0] = np.nan
    result = segment_strides(frames, np.zeros(5, int), kinds, 100.0,
                             required={"hip moment": signal})
    np.testing.assert_array_equal(result.strides["left"], [[0, 100]])
    assert result.rejected == 1
    assert result.issues[0] == "left: stride at 1.00 s rejected: gap in hip moment (1 samples)"


def test_cli_exit_status_and_messages(real_c3d_dir, tmp_path, capsys):
    assert main(["info", str(real_c3d_dir)]) == 1
    assert "holds 7 .c3d files: `k2muse import" in capsys.readouterr().err
    vicon = tmp_path / "release" / "SourceData" / "Vicon"
    vicon.mkdir(parents=True)
    (vicon / "walk01.c3d").write_bytes((real_c3d_dir / FMC).read_bytes())
    assert main(["process", str(tmp_path / "release"), str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err
    assert "nothing processed: no file name matched the release pattern" in err
    assert main(["info", str(tmp_path / "release")]) == 1
    assert "no file name under SourceData/ matched the release pattern" in \
        capsys.readouterr().err
    assert main(["import", str(vicon), str(tmp_path / "i"), "--mode", "LG",
                 "--speed", "1.1"]) == 0
    assert "{'processed': 1}" in capsys.readouterr().out
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "broken.c3d").write_bytes(b"\0" * 600)
    assert main(["import", str(tmp_path / "junk"), str(tmp_path / "j")]) == 1
    assert "nothing imported: 1 c3d file(s) skipped" in capsys.readouterr().err
    assert json.loads((tmp_path / "j" / "report.json").read_text())["summary"] == \
        {"skipped": 1}

    assert main(["info", str(real_c3d_dir / NO_MASS)]) == 0
    assert "body mass unknown;" in capsys.readouterr().out
    assert main(["import", str(real_c3d_dir / NO_MASS), str(tmp_path / "u")]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "u" / "trials" / "A22" / "unknown" /
                             "biomechanics-foundation_c3dio_gait-pig.h5")]) == 0
    assert "A22 unknown unknown unknown speed trial unknown; body mass unknown;" in \
        capsys.readouterr().out
