"""Windows, folds, training and the CLI on generated trials (k2muse_dataset.synth)."""

import json

import numpy as np
import pytest
import torch
from k2muse_dataset.process import process_release
from k2muse_dataset.synth import generate_release
from k2muse_learning.artifacts import load_manifest, load_torch_models
from k2muse_learning.export import OnnxRuntimeRunner, TorchRunner, parity_error
from k2muse_learning.tcn_cli import main
from k2muse_learning.training import (
    AverageCurveBaseline,
    TrainingConfig,
    assign_folds,
    predict_leg,
    train_all,
    write_trained_folder,
)
from k2muse_learning.windows import cut_windows, load_legs

torch.set_num_threads(1)
NAMES = ["hip_angle", "hip_velocity"]


@pytest.fixture(scope="module")
def trials(tmp_path_factory):
    root = tmp_path_factory.mktemp("k2muse")
    generate_release(root / "release", participants=["P01", "P02"], mode_keys=["LG_0"],
                     speeds=[1.0], trials=5, duration_s=20.0, seed=3)
    process_release(root / "release", root / "out", jobs=1)
    return root / "out" / "trials"


@pytest.fixture(scope="module")
def legs(trials):
    return load_legs(trials, NAMES, participants=["P01"])


@pytest.fixture(scope="module")
def trained(legs):
    config = TrainingConfig(epochs=25, patience=6, threads=1, architecture={
        "channels": 16, "levels": 4, "kernel_size": 4, "dropout": 0.0})
    return config, train_all(legs, config, show_progress=False)


def test_legs_are_both_sides_with_raw_si_inputs(legs):
    assert len(legs) == 10 and {leg.side for leg in legs} == {"left", "right"}
    leg = legs[0]
    assert leg.inputs.shape[0] == 2 and leg.synthetic
    angle, velocity = leg.inputs
    assert 0.2 < np.ptp(angle) < 2.0  # rad, not degrees
    np.testing.assert_allclose(velocity[1:], np.diff(angle) * leg.sample_rate_hz, rtol=1e-4,
                               atol=1e-4)
    assert 0.3 < leg.target_mask.mean() < 1.0  # accepted strides only


def test_windows_end_at_their_target_and_skip_nan(legs):
    leg = legs[0]
    data = cut_windows([leg], 100)
    first = data.end_index[0]
    np.testing.assert_array_equal(data.inputs[0], leg.inputs[:, first - 99:first + 1])
    assert data.targets[0, 0] == leg.moment[first]
    gap = leg.inputs.copy()
    gap[0, 500] = np.nan
    broken = type(leg)(**{**leg.__dict__, "inputs": gap})
    ends = cut_windows([broken], 100).end_index
    assert not np.any((ends >= 500) & (ends < 600)) and np.any(ends >= 600)


def test_multi_target_windows_match_single_target_windows(legs):
    many = cut_windows(legs[:1], 100, hop=50, targets_per_window=50)
    single = cut_windows(legs[:1], 100)
    lookup = dict(zip(single.end_index.tolist(), single.targets[:, 0], strict=True))
    end = many.end_index[3]
    for offset, value in enumerate(many.targets[3]):
        sample = end - 49 + offset
        assert (np.isnan(value) and sample not in lookup) or lookup[sample] == value


def test_folds_hold_out_whole_trials_and_never_share_one(legs):
    folds = assign_folds(legs, "trials", 5)
    assert sorted(folds.values()) == [0, 1, 2, 3, 4]
    for fold in range(5):
        test = {leg.trial_id for leg in legs if folds[leg.trial_id] == fold}
        train = {leg.trial_id for leg in legs if folds[leg.trial_id] != fold}
        assert len(test) == 1 and not test & train
        assert len([leg for leg in legs if leg.trial_id in test]) == 2  # both legs


def test_leave_one_subject_out_folds(trials):
    both = load_legs(trials, NAMES)
    folds = assign_folds(both, "subjects", 5)
    by_subject = {}
    for leg in both:
        by_subject.setdefault(leg.participant, set()).add(folds[leg.trial_id])
    assert by_subject == {"P01": {0}, "P02": {1}}


def test_sequence_prediction_equals_windowed_prediction(legs, trained):
    model = trained[1][0].model
    data = cut_windows(legs[:1], 100, hop=37)
    windowed = TorchRunner(model)(data.inputs)[:, 0]
    sequence = predict_leg(model, legs[0], 100)[data.end_index]
    np.testing.assert_allclose(sequence, windowed, atol=1e-5)


def test_training_clearly_beats_average_curve_baseline(trained):
    _, results = trained
    folds = results[0].folds
    assert len(folds) == 5
    tcn = np.mean([f.rmse_nm_per_kg for f in folds])
    baseline = np.mean([f.baseline_rmse_nm_per_kg for f in folds])
    assert tcn < 0.85 * baseline, (tcn, baseline)
    assert np.mean([f.r2 for f in folds]) > 0.95
    assert results[0].best.rmse_nm_per_kg == min(f.rmse_nm_per_kg for f in folds)


def test_baseline_beats_a_constant(legs):
    baseline = AverageCurveBaseline().fit(legs[2:])
    estimate = baseline.predict_leg(legs[0])
    keep = legs[0].target_mask & np.isfinite(estimate)
    measured = legs[0].moment[keep]
    assert np.sqrt(np.mean((estimate[keep] - measured) ** 2)) < 0.5 * measured.std()


def test_model_folder_from_training_has_parity_on_real_windows(tmp_path, trained, legs):
    config, results = trained
    folder = write_trained_folder(tmp_path / "model", results, config, legs)
    manifest, models = load_torch_models(folder)
    assert manifest["synthetic_training_data"] is True
    assert manifest["models"][0]["best_fold"] == results[0].best_fold
    assert len((folder / "results" / "folds.csv").read_text().splitlines()) == 1 + 5 + 1
    windows = cut_windows(legs, 100, hop=23).inputs
    runner = OnnxRuntimeRunner(folder / "onnx_sim" / "LG_0.onnx")
    assert parity_error(TorchRunner(models["LG_0"]), runner, windows) < 1e-4


def test_cli_train_report_and_refusal(tmp_path, trials, capsys):
    config = tmp_path / "tcn.yaml"
    config.write_text("architecture: {channels: 8, levels: 3, kernel_size: 3}\n"
                      "epochs: 2\nfolds: 2\nthreads: 1\nwindows_per_epoch: 64\n")
    out = tmp_path / "m"
    assert main(["train", "--data", str(trials), "--out", str(out), "--config", str(config),
                 "--participants", "P02", "--quiet"]) == 0
    load_manifest(out)
    trial = next(trials.glob("P02/*/*Trial_1.h5"))
    report_json = tmp_path / "r.json"
    assert main(["report", "--model", str(out), "--trial", str(trial), "--plot",
                 str(tmp_path / "r.png"), "--json", str(report_json), "--repeats", "20"]) == 0
    rows = {r["backend"]: r for r in json.loads(report_json.read_text())}
    assert rows["onnxruntime"]["max_abs_diff_vs_torch"] < 1e-4
    assert rows["pytorch"]["rmse_nm_per_kg"] == pytest.approx(
        rows["onnxruntime"]["rmse_nm_per_kg"], abs=1e-4)
    assert (tmp_path / "r.png").stat().st_size > 10_000
    capsys.readouterr()
    (out / "onnx_sim" / "LG_0.onnx").write_bytes(b"garbage")
    assert main(["report", "--model", str(out), "--trial", str(trial)]) == 1
    assert "sha256 mismatch" in capsys.readouterr().err
    assert main(["train", "--data", str(trials), "--out", str(tmp_path / "x"),
                 "--config", str(config)]) == 1
    assert "--participants" in capsys.readouterr().err


def test_config_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 3\nlearning_rat: 0.1\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown training config key\(s\)"):
        TrainingConfig.from_yaml(bad)
    with pytest.raises(ValueError, match="receptive field"):
        TrainingConfig(window_length=50)


def test_help_for_every_subcommand(capsys):
    for command in ("train", "export", "report"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert "--model" in capsys.readouterr().out or command == "train"


def _tamper_copy(trial, target, tamper):
    import shutil

    import h5py

    shutil.copy(trial, target)
    with h5py.File(target, "r+") as f:
        tamper(f)
    return target


def _replace(f, name, data):
    del f[name]
    f[name] = data


def test_report_on_a_malformed_trial_is_one_line(trials, tmp_path, capsys):
    from k2muse_learning.tcn_demo import write_demo_model_folder

    model = write_demo_model_folder(tmp_path / "model")
    trial = next(trials.glob("P01/*/*Trial_1.h5"))
    cases = {
        "dtype.h5": (lambda f: _replace(f, "kinematics/hip_angle_rad",
                                        np.full(f["kinematics/hip_angle_rad"].shape, b"x")),
                     "dtype |S1"),
        "shape.h5": (lambda f: _replace(f, "kinetics/hip_moment_nm_per_kg", np.zeros((7, 2))),
                     "hip (N*m/kg): shape (7, 2)"),
        "huge.h5": (lambda f: f["kinematics/hip_angle_rad"].__setitem__(slice(None), 1e30),
                    "beyond the plausible"),
    }
    for name, (tamper, message) in cases.items():
        bad = _tamper_copy(trial, tmp_path / name, tamper)
        assert main(["report", "--model", str(model), "--trial", str(bad)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(bad) in err and message in err, err


def test_train_skips_a_malformed_trial_with_one_line(trials, tmp_path, capsys):
    import shutil

    data = tmp_path / "trials"
    shutil.copytree(trials / "P02", data / "P02")
    good = next(data.glob("P02/*/*Trial_1.h5"))
    bad = _tamper_copy(good, good.with_name("P02_Ideal_LG_0_S_1_Trial_9.h5"),
                       lambda f: f["kinematics"].attrs.__setitem__("sample_rate_hz", -100.0))
    config = tmp_path / "tcn.yaml"
    config.write_text("architecture: {channels: 8, levels: 3, kernel_size: 3}\n"
                      "epochs: 1\nfolds: 2\nthreads: 1\nwindows_per_epoch: 32\n")
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "m"), "--config",
                 str(config), "--quiet"]) == 0
    err = capsys.readouterr().err
    skipped = [line for line in err.splitlines() if str(bad) in line]
    assert len(skipped) == 1 and "sample_rate_hz is -100" in skipped[0]
    assert load_manifest(tmp_path / "m")["training"]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_in_train_is_one_line_and_leaves_no_folder(trials, tmp_path, jobs):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    config = tmp_path / "tcn.yaml"
    config.write_text("epochs: 500\nfolds: 2\nthreads: 1\n")
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "k2muse-tcn"), "train", "--data", str(trials),
             "--out", str(tmp_path / "m"), "--config", str(config), "--participants", "P01",
             "--jobs", jobs], stdout=subprocess.DEVNULL, stderr=stderr, text=True,
            start_new_session=True)
        deadline = time.monotonic() + 300
        while "folds:" not in log.read_text():  # training (and with --jobs 2, workers) starts
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        os.killpg(process.pid, signal.SIGINT)  # as a terminal does: workers get it too
        assert process.wait(timeout=300) == 130
    err = log.read_text()
    assert "k2muse-tcn train: interrupted (finished outputs are kept)" in err.splitlines()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stderr.txt", "tcn.yaml"]
