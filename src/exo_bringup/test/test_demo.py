"""exo-demo: output-folder safety, argument handling, and a shortened run of every step."""

import json
from pathlib import Path

import pytest
from exo_bringup.demo import (
    DEMO_MARKER,
    DemoError,
    DemoSettings,
    main,
    prepare_output,
    run_demo,
)


def test_output_folder_is_used_when_new_or_empty(tmp_path):
    assert prepare_output(tmp_path / "new", force=False) == tmp_path / "new"
    assert (tmp_path / "new" / DEMO_MARKER).exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert prepare_output(empty, force=False) == empty


def test_a_non_empty_folder_gets_a_timestamped_subfolder(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    folder = prepare_output(tmp_path, force=False)
    assert folder.parent == tmp_path and folder.name.startswith("run-")
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert str(folder) in capsys.readouterr().out


def test_force_replaces_only_an_earlier_demo_folder(tmp_path):
    earlier = prepare_output(tmp_path / "demo", force=False)
    (earlier / "metrics.json").write_text("{}")
    assert prepare_output(earlier, force=True) == earlier
    assert not (earlier / "metrics.json").exists()
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(DemoError, match="not written by exo-demo"):
        prepare_output(foreign, force=True)
    assert (foreign / "thesis.tex").read_text() == "precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(DemoError, match="is a file"):
        prepare_output(tmp_path / "file", force=False)


def test_cli_refuses_absurd_options_with_one_line(tmp_path, capsys):
    assert main(["--output", str(tmp_path / "o"), "--rate-scale", "0"]) == 2
    assert "--rate-scale" in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.csv").write_text("1")
    assert main(["--output", str(foreign), "--force"]) == 1
    assert "not written by exo-demo" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--output" in capsys.readouterr().out


def test_shortened_demo_runs_every_step_into_one_folder(tmp_path):
    """The embedded default scaled down (10 s trials, 1 epoch)."""
    out = prepare_output(tmp_path / "demo", force=False)
    settings = DemoSettings(duration_s=10.0, epochs=1, windows_per_epoch=100)
    summary = run_demo(out, settings)
    assert set(summary["step_seconds"]) == {"generate and process dataset",
                                            "train and export TCN", "replay through the graph",
                                            "analyze recording"}
    assert (out / "demo_summary.json").exists()
    assert "/P03/" in summary["replayed_trial"]  # the participant left out of training
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    assert manifest["synthetic_training_data"] is True
    assert {m["mode_key"] for m in manifest["models"]} == {"LG_0"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["message_counts"]["/joint_states"] == 1000
    assert metrics["message_counts"]["/actuator/motor_command"] > 1000
    assert metrics["estimate_vs_measured_moment"]["both"]["samples"] > 800
    assert metrics["limit_violations"]["total"] == 0
    for plot in ("estimate_vs_measured.png", "force_tracking.png", "motor_commands.png"):
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"
    assert (out / "recording" / "metadata.yaml").exists()
    assert (out / "logs" / "hip_moment_estimator.log").exists()


REAL_C3D = Path(__file__).resolve().parents[4] / "shared" / "testdata" / "c3d"
NO_MASS_C3D = REAL_C3D / "biomechanics-foundation_c3dio_gait-pig.c3d"  # no PROCESSING:Bodymass


@pytest.fixture
def real_c3d_without_mass():
    if not NO_MASS_C3D.is_file():
        pytest.skip(f"real c3d test data not found at {REAL_C3D}")
    return NO_MASS_C3D


def test_trial_without_body_mass_is_refused_before_the_graph(tmp_path, capsys,
                                                              real_c3d_without_mass):
    out = tmp_path / "o"
    assert main(["--output", str(out), "--trial", str(real_c3d_without_mass)]) == 1
    err = capsys.readouterr().err
    assert "body mass unknown" in err and "--body-mass" in err
    assert not (out / "logs").exists() and not (out / "dataset" / "release").exists()
    assert main(["--output", str(tmp_path / "p"), "--trial", str(real_c3d_without_mass),
                 "--body-mass", "500"]) == 1
    assert "outside the assistance profile's range" in capsys.readouterr().err
    assert main(["--output", str(tmp_path / "q"), "--trial", str(tmp_path / "none.h5")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["--output", str(tmp_path / "r"), "--model", str(tmp_path)]) == 1
    assert f"--model {tmp_path}" in capsys.readouterr().err


def test_real_c3d_replayed_with_a_given_model_and_body_mass(tmp_path, real_c3d_without_mass):
    """A lab's c3d file (unknown body mass) through the whole graph with the user's model."""
    from k2muse_learning.tcn_demo import write_demo_model_folder

    model = write_demo_model_folder(tmp_path / "model")
    out = prepare_output(tmp_path / "demo", force=False)
    summary = run_demo(out, trial_file=real_c3d_without_mass, model_folder=model,
                       body_mass_kg=62.0)
    assert set(summary["step_seconds"]) == {"import trial", "replay through the graph",
                                            "analyze recording"}  # nothing generated/trained
    assert summary["body_mass_kg"] == 62.0 and summary["synthetic_data"] is False
    assert summary["model_folder"] == str(model)
    assert summary["replayed_trial"].startswith(str(out / "dataset" / "imported" / "trials"))
    metrics = json.loads((out / "metrics.json").read_text())
    counts = metrics["message_counts"]
    # 142 frames at 50 Hz replayed as 283 samples at 100 Hz (a loaded machine may drop a few)
    assert 200 < counts["/joint_states"] <= 283
    assert counts["/hip_moment/estimate"] > 0 and counts["/assistance/command"] > 200
