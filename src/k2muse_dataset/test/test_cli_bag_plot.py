import numpy as np
import pytest
from k2muse_dataset.bag_export import make_typestore
from k2muse_dataset.cli import main
from k2muse_dataset.trial_h5 import iter_trial_files, read_trial_h5
from rosbags.rosbag2 import Reader


def test_export_bag_round_trip(processed, tmp_path, capsys):
    out, _ = processed
    trial_file = next(iter_trial_files(out / "trials"))
    bag = tmp_path / "bag"
    assert main(["export-bag", str(trial_file), str(bag)]) == 0
    assert list(bag.glob("*.mcap")) and (bag / "metadata.yaml").is_file()
    trial = read_trial_h5(trial_file)
    typestore = make_typestore()
    states, events = [], []
    with Reader(bag) as reader:
        for conn, stamp, raw in reader.messages():
            msg = typestore.deserialize_cdr(raw, conn.msgtype)
            (states if conn.topic == "/joint_states" else events).append((stamp, msg))
    assert len(states) == trial.n_samples and len(events) == len(trial.event_time_s)
    stamps = np.array([s for s, _ in states])
    np.testing.assert_array_equal(np.diff(stamps), 10_000_000)  # 100 Hz capture rate
    first = states[0][1]
    assert first.name[:2] == ["left_hip_joint", "right_hip_joint"]
    assert first.position[1] == pytest.approx(trial.angles_rad["hip"][0, 1, 0])
    assert first.effort[0] == pytest.approx(trial.moments_nm_per_kg["hip"][0, 0, 0])
    assert [e.side for _, e in events] == list(trial.event_side)
    assert events[0][1].header.stamp.sec == 1_700_000_000
    # refuses to overwrite; one-line error, non-zero exit
    assert main(["export-bag", str(trial_file), str(bag)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_plot_writes_png_and_svg(processed, tmp_path, capsys):
    out, _ = processed
    assert main(["plot", str(out / "trials"), str(tmp_path), "--format", "png", "svg"]) == 0
    png, svg = tmp_path / "joint_angles_moments.png", tmp_path / "joint_angles_moments.svg"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    text = svg.read_text()
    assert "AS 10°" in text and "LG 0°" in text and "n=2" in text


def test_info_on_each_kind(processed, release, real_c3d_dir, capsys):
    out, _ = processed
    assert main(["info", str(release)]) == 0
    assert "12 trials, 2 participants" in capsys.readouterr().out
    assert main(["info", str(real_c3d_dir / "biomechanics-foundation_c3dio_gait-pig.c3d")]) == 0
    assert "142 frames at 50 Hz" in capsys.readouterr().out
    assert main(["info", str(next(iter_trial_files(out / "trials")))]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out


@pytest.mark.parametrize("argv,reason", [
    (["info", "/nonexistent/x.c3d"], "no such file"),
    (["process", "/nonexistent", "/tmp/x"], "no SourceData folder"),
    (["plot", "/nonexistent", "/tmp/x"], "no trial .h5 files"),
])
def test_user_errors_are_one_line(argv, reason, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert reason in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("command", ["info", "process", "plot", "export-bag", "synth"])
def test_help_on_each_command(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0 and "usage: k2muse" in capsys.readouterr().out


def test_synth_and_process_through_cli(tmp_path, capsys):
    root = tmp_path / "rel"
    assert main(["synth", str(root), "--participants", "P03", "--modes", "DS_10", "--trials",
                 "2", "--duration", "5", "--speeds", "1.5"]) == 0
    assert main(["process", str(root), str(tmp_path / "out"), "--jobs", "1", "--points",
                 "51"]) == 0
    trial = read_trial_h5(tmp_path / "out/trials/P03/Ideal/P03_Ideal_DS_10_S_1x5_Trial_2.h5")
    assert trial.incline_deg == -10.0 and trial.speed_m_s == 1.5
    assert "'processed': 3" in capsys.readouterr().out
