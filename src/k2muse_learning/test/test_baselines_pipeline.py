"""Baselines on generated trial files: loading, leakage-free protocols, learning, CLI outputs.

The trials come from k2muse_dataset's synthetic release (real .c3d/.txt/.mat files) processed by
its real readers, so these tests exercise the same path as real K2MUSE data.
"""

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import yaml
from k2muse_dataset.process import process_release
from k2muse_dataset.synth import generate_release
from k2muse_dataset.trial_h5 import read_trial_h5, write_trial_h5
from k2muse_learning.baselines.dataset import FeatureConfig, load_dataset, load_trial_features
from k2muse_learning.baselines.evaluation import evaluate
from k2muse_learning.baselines.models import build_model, model_names
from k2muse_learning.baselines.protocols import LeakageError, Split, make_splits
from k2muse_learning.baselines.sweep import parse_config
from k2muse_learning.baselines_cli import main

CONDITIONS = ("Ideal", "Fatigue", "InterDay")


def write_dataset(root, participants=3, trials=5, duration_s=8.0):
    """A synthetic release in the real layout, processed by the real readers into trial files."""
    release = generate_release(root / "release", participants=[f"P{p + 1:02d}" for p in
                                                                range(participants)],
                               conditions=CONDITIONS, mode_keys=("LG_0",), trials=trials,
                               duration_s=duration_s, seed=11, processed=False)
    process_release(release, root, jobs=2)
    return root


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("baselines_data"))


@pytest.fixture(scope="module")
def trials(dataset_root):
    loaded, problems = load_dataset(sorted(dataset_root.rglob("*.h5")), FeatureConfig(), jobs=1)
    assert problems == []
    return loaded


def test_trial_features_are_row_aligned_and_labelled(trials):
    trial = trials[0]
    rows = len(trial.time_s)
    assert trial.angles_deg.shape == (rows, 3)
    assert trial.modalities["emg"].shape == (rows, 13 * 5)
    assert trial.modalities["aus"].shape == (rows, 4 * 11)
    assert trial.features("both").shape == (rows, 13 * 5 + 4 * 11)
    assert set(np.unique(trial.phases)) == {-1, 0, 1, 2, 3, 4}
    assert np.all(np.diff(trial.time_s) == pytest.approx(0.05))  # stride 5 at 100 Hz


def test_missing_aus_is_absent_not_invented(tmp_path, dataset_root):
    source = next((dataset_root / "trials").rglob("*.h5"))
    path = tmp_path / source.name
    write_trial_h5(path, replace(read_trial_h5(source), aus_frames=None))
    trial = load_trial_features(path, FeatureConfig())
    assert "aus" not in trial.modalities and trial.features("both") is None
    assert trial.features("emg") is not None


def test_unreadable_file_is_reported_not_fatal(tmp_path, dataset_root):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"not hdf5")
    good = next(dataset_root.rglob("*.h5"))
    loaded, problems = load_dataset([bad, good], FeatureConfig())
    assert len(loaded) == 1 and len(problems) == 1 and "broken.h5" in problems[0]


@pytest.mark.parametrize("protocol,options", [
    ("within_subject", {"folds": 3, "conditions": ["Ideal"]}),
    ("loso", {"conditions": None}),
    ("cross_condition", {"train_condition": "Ideal"}),
])
def test_protocols_never_put_a_trial_on_both_sides(trials, protocol, options):
    splits = make_splits(protocol, trials, options, seed=0)
    assert splits
    tested = []
    for split in splits:
        test = {trials[i].key for idx in split.test.values() for i in idx}
        train = {trials[i].key for i in split.train}
        assert not train & test
        tested.extend(test)
        if protocol == "loso":
            assert {trials[i].participant for i in split.train}.isdisjoint(
                {trials[i].participant for idx in split.test.values() for i in idx})
        if protocol == "cross_condition":
            assert {trials[i].condition for i in split.train} == {"Ideal"}
            assert "Ideal" not in split.test
    if protocol == "within_subject":  # every Ideal trial is tested exactly once
        ideal = [t.key for t in trials if t.condition == "Ideal"]
        assert sorted(tested) == sorted(ideal)


def test_leak_check_catches_a_shared_trial(trials):
    with pytest.raises(LeakageError):
        Split("within_subject", "P01", 0, (0, 1), {"Ideal": (1, 2)}).check(trials)


def _p01_within(trials):
    subset = [t for t in trials if t.participant == "P01"]
    return subset, make_splits("within_subject", subset, {"folds": 3}, seed=0)


SMALL_NET = {"epochs": 25, "context": 8, "hidden": 16}
FAST = {"tcn": SMALL_NET, "lstm": {**SMALL_NET, "epochs": 40}, "transformer": SMALL_NET,
        "mlp": {"mlpregressor__max_iter": 100}, "random_forest": {"n_estimators": 30}}


@pytest.mark.parametrize("model", [m for m in model_names("regression") if m != "mean"])
def test_each_regressor_learns_joint_angles(trials, model):
    subset, splits = _p01_within(trials)
    reference = evaluate(lambda: build_model("regression", "mean"), subset, splits, "both",
                         "regression").rows[0]
    params = FAST.get(model, {})
    result = evaluate(lambda: build_model("regression", model, params=params), subset, splits,
                      "both", "regression").rows[0]
    for joint in ("hip", "knee", "ankle"):
        assert result[f"rmse_deg_{joint}"] < 0.5 * reference[f"rmse_deg_{joint}"], joint
        assert result[f"r2_{joint}"] > 0.7, joint


@pytest.mark.parametrize("model", [m for m in model_names("classification") if m != "majority"])
def test_each_classifier_beats_chance_on_gait_phase(trials, model):
    subset, splits = _p01_within(trials)
    params = {k: v for k, v in FAST.get(model, {}).items() if "regressor" not in k}
    row = evaluate(lambda: build_model("classification", model, params=params), subset, splits,
                   "emg", "classification").rows[0]
    majority = evaluate(lambda: build_model("classification", "majority"), subset, splits, "emg",
                        "classification").rows[0]
    assert row["accuracy"] > max(0.6, majority["accuracy"] + 0.2)
    assert row["macro_f1"] > 0.5


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="unknown regression models"):
        parse_config({"regression": {"models": {"ridgge": {}}}})
    with pytest.raises(ValueError, match="unknown protocols"):
        parse_config({"protocols": {"kfold": {}}})
    with pytest.raises(ValueError, match="features"):
        parse_config({"features": {"stride": 0}})


def test_cli_sweep_writes_tables_plots_and_is_reproducible(dataset_root, tmp_path, capsys):
    config = {
        "seed": 3,
        "data": {"participants": ["P01", "P02"]},
        "modalities": ["emg"],
        "protocols": {"within_subject": {"folds": 2}, "loso": {},
                      "cross_condition": {"train_condition": "Ideal"}},
        "regression": {"models": {"mean": {}, "ridge": {},
                                  "tcn": {"epochs": 1, "context": 4, "hidden": 8}}},
        "classification": {"models": {"majority": {}, "lda": {}}},
    }
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(config))
    runs = []
    for name in ("a", "b"):
        assert main(["run", "--data", str(dataset_root), "--out", str(tmp_path / name),
                     "--config", str(cfg)]) == 0
        runs.append((tmp_path / name / "summary.csv").read_text())
    assert runs[0] == runs[1]
    out = tmp_path / "a"
    for name in ("results_per_participant.csv", "summary.md", "timings.csv", "confusion.json",
                 "config_used.yaml", "regression_within_subject_Ideal.png",
                 "regression_cross_condition_Fatigue.png", "classification_loso_Ideal.png"):
        assert (out / name).stat().st_size > 0, name
    rows = list(csv.DictReader((out / "summary.csv").open()))
    conditions = {r["condition"] for r in rows if r["protocol"] == "cross_condition"}
    assert conditions == {"Fatigue", "InterDay"}
    ridge = next(r for r in rows if r["model"] == "ridge" and r["protocol"] == "within_subject"
                 and r["modality"] == "emg")
    mean = next(r for r in rows if r["model"] == "mean" and r["protocol"] == "within_subject"
                and r["modality"] == "emg")
    assert float(ridge["rmse_deg_hip_mean"]) < float(mean["rmse_deg_hip_mean"])
    assert int(ridge["participants"]) == 2
    confusion = json.loads((out / "confusion.json").read_text())
    assert np.array(confusion["matrices"][0]["counts"]).shape == (5, 5)
    assert "| within_subject | Ideal | emg | ridge | 2 |" in (out / "summary.md").read_text()


def test_cli_user_errors_exit_nonzero_with_one_line(tmp_path, capsys):
    assert main(["run", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "nowhere" in err and err.count("\n") == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("modalities: [emg, sonar]\n")
    (tmp_path / "d").mkdir()
    assert main(["run", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "o"),
                 "--config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "sonar" in err and "Traceback" not in err and err.count("\n") == 1


def test_ctrl_c_while_features_load_in_parallel_is_one_line(dataset_root, tmp_path):
    """A real Ctrl-C, sent to the whole process group as a terminal does (workers included)."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"modalities": ["emg"], "regression": {"models": {"mean": {}}},
                                   "classification": {"models": {"majority": {}}}}))
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "k2muse-baselines"), "run", "--data",
             str(dataset_root), "--out", str(tmp_path / "out"), "--config", str(cfg),
             "--jobs", "2"], stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        deadline = time.monotonic() + 300
        while "features:" not in log.read_text():  # the workers are reading trial files
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=300) == 130, log.read_text()
    err = log.read_text()
    assert "k2muse-baselines run: interrupted (finished outputs are kept)" in err.splitlines()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert not (tmp_path / "out").exists()
