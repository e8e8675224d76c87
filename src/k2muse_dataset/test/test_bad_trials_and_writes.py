"""Malformed trial files, a full disk and Ctrl-C: one line, no traceback, nothing half-written.

Trial files are written through the real writer, then tampered with h5py the way a broken
tool or a hand edit would; the disk is a small tmpfs (a patched write where mounting is not
allowed); Ctrl-C is a real SIGINT to the console script.
"""

import errno
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from k2muse_dataset.atomic import sweep_leftovers
from k2muse_dataset.cli import main
from k2muse_dataset.process import process_release
from k2muse_dataset.trial_h5 import Trial, TrialFileError, read_trial_h5, write_trial_h5

N = 3000
DEAD_PID = 2 ** 22 + 4242  # above the kernel's default pid_max: never a live process
K2MUSE = str(Path(sys.executable).parent / "k2muse")


def good_trial() -> Trial:
    t = np.arange(N) / 100.0
    wave = np.stack([np.sin(2 * np.pi * t + phase) for phase in (0.0, 0.3, 0.6)], axis=-1)
    joint = {j: 0.4 * np.stack([wave, wave], axis=1) for j in ("hip", "knee", "ankle")}
    return Trial(
        participant="P09", condition="Ideal", mode="LG", incline_deg=0.0, speed_m_s=1.0,
        trial=1, body_mass_kg=70.0, synthetic=True, time_s=t, angles_rad=joint,
        moments_nm_per_kg={j: 0.5 * v for j, v in joint.items()},
        event_time_s=np.array([0.5, 1.5, 2.5]), event_frame=np.array([50, 150, 250]),
        event_side=np.array([0, 0, 0]), event_kind=np.array([0, 0, 0]),
        strides={"left": np.array([[50, 150], [150, 250]]), "right": np.zeros((0, 2), int)})


def replace(f, name, data):
    del f[name]
    f[name] = data


def set_attr(name, value, group="/"):
    return lambda f: f[group].attrs.__setitem__(name, value)


TAMPERING = {
    "angle shape": (lambda f: replace(f, "kinematics/hip_angle_rad", np.zeros((N, 2))),
                    r"hip \(rad\): shape \(3000, 2\), expected \(3000, 2, 3\)"),
    "angle dtype": (lambda f: replace(f, "kinematics/hip_angle_rad",
                                      np.full((N, 2, 3), b"abc")), r"dtype \|S3"),
    "rate 0": (set_attr("sample_rate_hz", 0.0, "kinematics"), "sample_rate_hz is 0.0"),
    "rate -100": (set_attr("sample_rate_hz", -100.0, "kinematics"), "sample_rate_hz is -100"),
    "rate NaN": (set_attr("sample_rate_hz", math.nan, "kinematics"), "sample_rate_hz is nan"),
    "rate 50 for 100 Hz time": (set_attr("sample_rate_hz", 50.0, "kinematics"),
                                "sample_rate_hz 50 disagrees with time_s"),
    "reversed time": (lambda f: replace(f, "kinematics/time_s", np.arange(N)[::-1] / 100.0),
                      "not strictly increasing"),
    "NaN time": (lambda f: f["kinematics/time_s"].__setitem__(7, math.nan), "non-finite"),
    "5 time samples": (lambda f: replace(f, "kinematics/time_s", np.arange(5) / 100.0),
                       r"shape \(3000, 2, 3\), expected \(5, 2, 3\)"),
    "negative body mass": (set_attr("body_mass_kg", -70.0), "body_mass_kg -70 outside"),
    "absurd body mass": (set_attr("body_mass_kg", 7000.0), "body_mass_kg 7000 outside"),
    "format_version array": (set_attr("format_version", np.array([1, 1])),
                             "unsupported format_version"),
    "angles 1e30": (lambda f: f["kinematics/hip_angle_rad"].__setitem__((10, 0, 0), 1e30),
                    "beyond the plausible"),
    "event frame beyond the trial": (lambda f: f["events/frame"].__setitem__(2, N + 5),
                                     "events/frame outside"),
    "stride beyond the trial": (lambda f: f["strides/left"].__setitem__((1, 1), N + 1),
                                "strides/left"),
    "participant as numbers": (set_attr("participant", np.arange(3)), "attribute participant"),
    "no kinematics": (lambda f: f.__delitem__("kinematics"), "missing"),
}


@pytest.fixture
def trial_file(tmp_path):
    return write_trial_h5(tmp_path / "trials" / "P09_trial.h5", good_trial())


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampered_trial_is_refused_by_reader_and_every_command(case, trial_file, capsys):
    tamper, message = TAMPERING[case]
    with h5py.File(trial_file, "r+") as f:
        tamper(f)
    with pytest.raises(TrialFileError, match=message) as error:
        read_trial_h5(trial_file)
    assert str(error.value).startswith(str(trial_file))
    for argv in (["info", str(trial_file)],
                 ["export-bag", str(trial_file), str(trial_file.parent / "bag")]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(trial_file) in err and "Traceback" not in err
    assert sorted(p.name for p in trial_file.parent.iterdir()) == [trial_file.name]


def test_unknown_body_mass_is_valid_and_round_trips(tmp_path, capsys):
    trial = good_trial()
    trial.body_mass_kg = math.nan
    back = read_trial_h5(write_trial_h5(tmp_path / "t.h5", trial))
    assert math.isnan(back.body_mass_kg)
    assert main(["info", str(tmp_path / "t.h5")]) == 0
    assert "3000 samples at 100 Hz" in capsys.readouterr().out


def test_bag_stamps_outside_ros_time_are_refused(trial_file, tmp_path, capsys):
    assert main(["export-bag", str(trial_file), str(tmp_path / "bag"),
                 "--start-time-ns", "-5000000000"]) == 1
    assert "do not fit a ROS time" in capsys.readouterr().err
    assert not (tmp_path / "bag").exists()


def test_leftovers_of_dead_writers_are_swept_and_live_ones_kept(trial_file, tmp_path, capsys):
    folder = trial_file.parent
    dead_part = folder / f".x.h5.{DEAD_PID}-abc123.part"
    dead_part.write_bytes(b"half a file")
    dead_stage = folder / f".bag.staging-{DEAD_PID}-xyz"
    (dead_stage / "bag").mkdir(parents=True)
    live_part = folder / f".y.h5.{os.getpid()}-def456.part"
    live_part.write_bytes(b"being written")
    unrelated = folder / ".notes.part"
    unrelated.write_text("not ours")
    assert main(["export-bag", str(trial_file), str(folder / "bag")]) == 0
    capsys.readouterr()
    assert not dead_part.exists() and not dead_stage.exists()
    assert live_part.exists() and unrelated.exists()
    assert sweep_leftovers(folder) == []


def test_rerun_of_process_sweeps_part_files_of_a_crashed_run(release, tmp_path):
    out = tmp_path / "out"
    crashed = out / "trials" / "P01" / "Ideal" / f".P01_x.h5.{DEAD_PID}-k3j2.part"
    crashed.parent.mkdir(parents=True)
    crashed.write_bytes(b"\x89HDF half")
    process_release(release, out, jobs=1, write_mat=False)
    assert not crashed.exists()
    assert not list(out.rglob("*.part"))


def _process_cli(release, out, jobs, **popen):
    return subprocess.Popen([K2MUSE, "process", str(release), str(out), "--jobs", str(jobs),
                             "--no-mat"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


def _outputs_are_complete(out):
    assert not [p for p in out.rglob("*") if p.name.endswith(".part") or ".staging-" in p.name]
    for path in out.rglob("*.h5"):
        read_trial_h5(path, load_emg=False, load_aus=False)


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs: room for about one processed trial."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({result.stderr.strip()})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("jobs", [1, 2])
def test_full_disk_is_one_line_not_a_crash(release, small_disk, jobs):
    out = small_disk / f"out{jobs}"
    process = _process_cli(release, out, jobs)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 1, err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].endswith(".h5: no space left on device"), err
    assert "Traceback" not in err and "BrokenProcessPool" not in err
    _outputs_are_complete(out)


def test_full_disk_with_a_patched_write(release, tmp_path, monkeypatch, capsys):
    """Where mounting is impossible: the write itself reports ENOSPC."""
    real_fsync = os.fsync
    calls = []

    def fsync(fd):
        calls.append(fd)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr("k2muse_dataset.atomic.os.fsync", fsync)
    out = tmp_path / "out"
    assert main(["process", str(release), str(out), "--jobs", "1", "--no-mat"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].endswith(".h5: no space left on device"), errors
    _outputs_are_complete(out)
    assert len(list(out.rglob("*.h5"))) == 1


@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_in_process_is_one_line_and_keeps_finished_trials(release, tmp_path, jobs):
    out = tmp_path / "out"
    process = _process_cli(release, out, jobs, start_new_session=True)
    deadline = time.monotonic() + 300
    while not list(out.rglob("*.h5")) and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert process.poll() is None, "processing finished before it could be interrupted"
    os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the workers get it too
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    # Progress bars share stderr (ended by carriage returns); the message is a line of its own.
    lines = err.splitlines()
    assert "k2muse process: interrupted (finished outputs are kept)" in lines, err
    assert sum("interrupted" in line for line in lines) == 1
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    _outputs_are_complete(out)
    finished = len(list(out.rglob("*.h5")))
    assert 1 <= finished < 12
    # A rerun completes the batch and keeps what was finished.
    assert main(["process", str(release), str(out), "--jobs", "1", "--no-mat"]) == 0
    assert len(list(out.rglob("*.h5"))) == 12
    shutil.rmtree(out)


def test_plot_skips_a_bad_trial_with_one_line_and_plots_the_rest(processed, tmp_path, capsys):
    out, _ = processed
    trials = tmp_path / "trials"
    shutil.copytree(out / "trials", trials)
    bad = next(trials.rglob("*.h5"))
    with h5py.File(bad, "r+") as f:
        f["kinematics"].attrs["sample_rate_hz"] = -100.0
    assert main(["plot", str(trials), str(tmp_path / "plots"), "--format", "png"]) == 0
    captured = capsys.readouterr()
    skipped = [line for line in captured.err.splitlines() if "skipped" in line]
    assert len(skipped) == 1 and str(bad) in skipped[0] and "sample_rate_hz is -100" in skipped[0]
    assert (tmp_path / "plots" / "joint_angles_moments.png").stat().st_size > 20_000


def test_run_command_maps_errors_and_ctrl_c_to_one_line_and_status(capsys):
    from k2muse_dataset.cli_errors import run_command

    def interrupted():
        raise KeyboardInterrupt

    def disk_full():
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/out.h5")

    def bad_check():
        raise TrialFileError("/data/t.h5: time_s is not strictly increasing\nsecond line")

    def bug():
        raise ZeroDivisionError("a programming error keeps its traceback")

    assert run_command("tool", interrupted) == 130
    assert capsys.readouterr().err == "tool: interrupted (finished outputs are kept)\n"
    assert run_command("tool", disk_full) == 1
    assert capsys.readouterr().err == "tool: error: /data/out.h5: no space left on device\n"
    assert run_command("tool", bad_check) == 1
    assert capsys.readouterr().err == "tool: error: /data/t.h5: time_s is not strictly " \
                                      "increasing\n"
    assert run_command("tool", lambda: 3) == 3 and run_command("tool", lambda: None) == 0
    with pytest.raises(ZeroDivisionError):
        run_command("tool", bug)


def _record_and_interrupt_at(folder, index, interrupt_at):
    """A batch call (50 ms): leaves a file; at ``interrupt_at`` sends Ctrl-C to the batch."""
    import multiprocessing

    if index == interrupt_at:
        in_worker = multiprocessing.parent_process() is not None
        os.kill(os.getppid() if in_worker else os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # the interrupt arrives while this call runs
    (Path(folder) / f"{index}.done").write_text("")
    return index


@pytest.mark.parametrize("jobs", [1, 2])
def test_run_batch_stops_between_calls_on_ctrl_c(tmp_path, jobs):
    from k2muse_dataset.batch import run_batch

    with pytest.raises(KeyboardInterrupt):
        run_batch(_record_and_interrupt_at, [(str(tmp_path), i, 3) for i in range(40)], jobs)
    done = sorted(int(p.stem) for p in tmp_path.glob("*.done"))
    assert 3 in done  # the call under way when Ctrl-C came finished ...
    assert len(done) < 40  # ... and the batch stopped
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    calls = [(str(tmp_path), i, -1) for i in range(5)]
    assert run_batch(_record_and_interrupt_at, calls, jobs) == [0, 1, 2, 3, 4]
