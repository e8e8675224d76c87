"""Replay schedule, trial loading (HDF5 and bag) and the trial_replay node over real DDS."""

import math
import time

import numpy as np
import pytest
from exo_control.recorder import BagRecording, exo_typestore
from exo_control.replay import ReplayCursor
from exo_control.trial_source import TrialSourceError, load_trial
from k2muse_dataset.trial_h5 import Trial, write_trial_h5

RATE_HZ = 100.0


def make_trial(duration_s: float = 2.0) -> Trial:
    """A walking-like trial: sinusoidal hip angle, a moment leading it, heel strikes each 1 s."""
    n = round(duration_s * RATE_HZ)
    t = np.arange(n) / RATE_HZ
    phase = 2 * np.pi * t  # one stride per second
    angles = np.zeros((n, 2, 3))
    angles[:, 0, 0] = 0.35 * np.sin(phase) + 0.1
    angles[:, 1, 0] = 0.35 * np.sin(phase + np.pi) + 0.1
    moments = np.zeros((n, 2, 3))
    moments[:, 0, 0] = 0.8 * np.cos(phase)
    moments[:, 1, 0] = 0.8 * np.cos(phase + np.pi)
    strikes = np.arange(0.0, duration_s, 1.0)
    event_time = np.concatenate([strikes, strikes + 0.5, strikes + 0.6])
    event_side = np.concatenate([np.zeros_like(strikes), np.ones_like(strikes),
                                 np.zeros_like(strikes)]).astype(np.uint8)
    event_kind = np.concatenate([np.zeros_like(strikes), np.zeros_like(strikes),
                                 np.ones_like(strikes)]).astype(np.uint8)
    return Trial(
        participant="P01", condition="Ideal", mode="LG", incline_deg=0.0, speed_m_s=1.0,
        trial=1, body_mass_kg=70.0, synthetic=True, time_s=t,
        angles_rad={"hip": angles}, moments_nm_per_kg={"hip": moments},
        event_time_s=event_time, event_frame=np.round(event_time * RATE_HZ).astype(np.int64),
        event_side=event_side, event_kind=event_kind,
        strides={"left": np.zeros((0, 2), np.int64), "right": np.zeros((0, 2), np.int64)},
    )


@pytest.fixture
def trial_file(tmp_path):
    return write_trial_h5(tmp_path / "P01_Ideal_LG_0_S_1_Trial_1.h5", make_trial())


# --- schedule -------------------------------------------------------------------------------

def drain(cursor: ReplayCursor, until_s: float, step_s: float = 0.013):
    """Tick the cursor like a jittery timer; return all (index, play time, pass) handed out."""
    out = []
    elapsed = 0.0
    while elapsed <= until_s:
        out += [(d.index, d.play_time_s, d.pass_index) for d in cursor.due_samples(elapsed)]
        elapsed += step_s
    return out


def test_cursor_hands_out_every_sample_once_at_its_time():
    times = np.arange(50) / RATE_HZ + 3.0  # trial clock need not start at zero
    cursor = ReplayCursor(times)
    assert cursor.due_samples(-0.001) == []
    first = cursor.due_samples(0.0)
    assert [d.index for d in first] == [0]
    out = [(d.index, d.play_time_s) for d in first] + [
        (i, p) for i, p, _ in drain(cursor, 1.0)]
    assert [i for i, _ in out] == list(range(50))
    np.testing.assert_allclose([p for _, p in out], times - 3.0)
    assert cursor.finished
    assert cursor.due_samples(100.0) == []


def test_cursor_never_hands_out_a_sample_before_its_play_time():
    cursor = ReplayCursor(np.arange(100) / RATE_HZ)
    for elapsed in np.arange(0.0, 1.2, 0.0037):
        for item in cursor.due_samples(elapsed):
            assert item.play_time_s <= elapsed
            assert elapsed - item.play_time_s < 0.0037 + 1e-12


def test_rate_scale_compresses_play_time():
    cursor = ReplayCursor(np.arange(20) / RATE_HZ, rate_scale=4.0)
    out = drain(cursor, 0.1, step_s=0.001)
    assert len(out) == 20
    np.testing.assert_allclose([p for _, p, _ in out], np.arange(20) / RATE_HZ / 4.0)
    assert cursor.pass_duration_s == pytest.approx(20 / RATE_HZ / 4.0)


def test_start_offset_skips_the_beginning():
    cursor = ReplayCursor(np.arange(100) / RATE_HZ, start_offset_s=0.255)
    out = drain(cursor, 2.0)
    assert out[0][0] == 26 and out[0][1] == pytest.approx(0.0)
    assert [i for i, _, _ in out] == list(range(26, 100))


def test_loop_restarts_at_the_offset_with_increasing_play_times():
    cursor = ReplayCursor(np.arange(10) / RATE_HZ, loop=True, start_offset_s=0.05)
    out = drain(cursor, 0.145, step_s=0.001)
    indices = [i for i, _, _ in out]
    assert indices[:5] == [5, 6, 7, 8, 9] and indices[5:10] == [5, 6, 7, 8, 9]
    assert [p for _, _, p in out][:11] == [0] * 5 + [1] * 5 + [2]
    plays = np.array([p for _, p, _ in out])
    np.testing.assert_allclose(np.diff(plays), 0.01)  # one period across the seam, too
    assert not cursor.finished


def test_events_follow_the_trial_clock_and_the_offset():
    times = np.arange(200) / RATE_HZ
    cursor = ReplayCursor(times, np.array([1.5, 0.2, 1.0, 9.0, np.nan]), start_offset_s=0.5)
    assert cursor.due_events(0.49) == []
    due = cursor.due_events(0.5)
    assert [(d.index, d.play_time_s) for d in due] == [(2, pytest.approx(0.5))]
    due = cursor.due_events(10.0)
    assert [(d.index, d.play_time_s) for d in due] == [(0, pytest.approx(1.0))]


@pytest.mark.parametrize("kwargs, message", [
    ({"rate_scale": 0.0}, "rate_scale"),
    ({"rate_scale": math.nan}, "rate_scale"),
    ({"start_offset_s": -1.0}, "start_offset_s"),
    ({"start_offset_s": 5.0}, "past the end"),
])
def test_cursor_rejects_absurd_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ReplayCursor(np.arange(100) / RATE_HZ, **kwargs)


def test_cursor_rejects_unordered_times():
    with pytest.raises(ValueError, match="strictly increasing"):
        ReplayCursor(np.array([0.0, 0.02, 0.01]))


# --- trial sources --------------------------------------------------------------------------

def test_load_trial_h5_gives_sagittal_hip_signals(trial_file):
    source = make_trial()
    replay = load_trial(trial_file)
    np.testing.assert_array_equal(replay.hip_angle_rad, source.angles_rad["hip"][:, :, 0])
    np.testing.assert_array_equal(replay.hip_moment_nm_per_kg,
                                  source.moments_nm_per_kg["hip"][:, :, 0])
    # A backward difference is the derivative half a sample before each stamp.
    midpoints_s = source.time_s - 0.5 / RATE_HZ
    expected_velocity = 0.35 * 2 * np.pi * np.cos(2 * np.pi * midpoints_s)
    np.testing.assert_allclose(replay.hip_velocity_rad_s[1:-1, 0], expected_velocity[1:-1],
                               atol=0.02)
    assert replay.sample_rate_hz == pytest.approx(RATE_HZ)
    assert replay.mode_key == "LG_0"
    assert list(replay.event_time_s) == sorted(source.event_time_s)


def test_load_trial_names_the_file_when_it_is_broken(tmp_path):
    with pytest.raises(TrialSourceError, match="no such file"):
        load_trial(tmp_path / "missing.h5")
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5 at all")
    with pytest.raises(TrialSourceError, match="garbage.h5: not an HDF5 file"):
        load_trial(garbage)
    other = tmp_path / "notes.txt"
    other.write_text("x")
    with pytest.raises(TrialSourceError, match="neither"):
        load_trial(other)
    with pytest.raises(TrialSourceError, match="cannot read bag|no /joint_states"):
        load_trial(tmp_path)


def _write_bag(path, trial: Trial, with_effort: bool):
    """A bag like the ones k2muse export-bag and topic_recorder write."""
    store = exo_typestore()
    joint_state = store.types["sensor_msgs/msg/JointState"]
    header_t = store.types["std_msgs/msg/Header"]
    time_t = store.types["builtin_interfaces/msg/Time"]
    event_t = store.types["exo_msgs/msg/GaitEvent"]

    def header(t):
        return header_t(stamp=time_t(sec=int(t), nanosec=round((t % 1) * 1e9)), frame_id="")

    bag = BagRecording(path, {"/joint_states": "sensor_msgs/msg/JointState",
                              "/gait_events": "exo_msgs/msg/GaitEvent"})
    hip = trial.angles_rad["hip"][:, :, 0]
    moment = trial.moments_nm_per_kg["hip"][:, :, 0]
    for i, t in enumerate(trial.time_s + 100.0):
        msg = joint_state(header=header(t), name=["left_hip_joint", "right_hip_joint"],
                          position=hip[i].copy(), velocity=np.zeros(0),
                          effort=moment[i].copy() if with_effort else np.zeros(0))
        bag.write("/joint_states", int(t * 1e9),
                  store.serialize_cdr(msg, "sensor_msgs/msg/JointState"))
    for t, side, kind in zip(trial.event_time_s + 100.0, trial.event_side, trial.event_kind,
                             strict=True):
        msg = event_t(header=header(t), side=int(side), kind=int(kind))
        bag.write("/gait_events", int(t * 1e9), store.serialize_cdr(msg, "exo_msgs/msg/GaitEvent"))
    return bag.close()


@pytest.mark.parametrize("with_effort", [True, False])
def test_load_trial_from_a_bag_matches_the_h5_source(tmp_path, with_effort):
    trial = make_trial()
    bag = _write_bag(tmp_path / "bag", trial, with_effort)
    replay = load_trial(bag)
    np.testing.assert_allclose(replay.time_s, trial.time_s, atol=1e-9)  # from the first stamp
    np.testing.assert_array_equal(replay.hip_angle_rad, trial.angles_rad["hip"][:, :, 0])
    from_h5 = load_trial(write_trial_h5(tmp_path / "t.h5", trial))
    np.testing.assert_allclose(replay.hip_velocity_rad_s, from_h5.hip_velocity_rad_s, atol=1e-6)
    if with_effort:
        np.testing.assert_array_equal(replay.hip_moment_nm_per_kg,
                                      trial.moments_nm_per_kg["hip"][:, :, 0])
    else:
        assert replay.hip_moment_nm_per_kg is None
    assert replay.event_time_s.size == trial.event_time_s.size
    assert load_trial(bag / "bag.mcap").time_s.size == trial.time_s.size


def test_load_trial_from_a_k2muse_export_bag(tmp_path):
    from k2muse_dataset.bag_export import export_trial_bag

    trial = make_trial()
    bag = export_trial_bag(trial, tmp_path / "exported")
    replay = load_trial(bag)
    from_h5 = load_trial(write_trial_h5(tmp_path / "t.h5", trial))
    np.testing.assert_allclose(replay.time_s, trial.time_s, atol=1e-9)
    np.testing.assert_allclose(replay.event_time_s, np.sort(trial.event_time_s), atol=1e-9)
    np.testing.assert_array_equal(replay.hip_angle_rad, from_h5.hip_angle_rad)
    np.testing.assert_array_equal(replay.hip_moment_nm_per_kg, from_h5.hip_moment_nm_per_kg)
    np.testing.assert_allclose(replay.hip_velocity_rad_s, from_h5.hip_velocity_rad_s, atol=1e-9)
    assert replay.event_time_s.size == trial.event_time_s.size


def test_bag_without_the_joint_names_is_refused(tmp_path):
    bag = _write_bag(tmp_path / "bag", make_trial(), True)
    with pytest.raises(TrialSourceError, match="fewer than two"):
        load_trial(bag, ["left_knee_joint", "right_knee_joint"])


# --- the node over DDS ----------------------------------------------------------------------

def _collect(ros_node):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState

    from exo_msgs.msg import GaitEvent

    states, events = [], []
    ros_node.create_subscription(JointState, "/joint_states", states.append,
                                 QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE))
    ros_node.create_subscription(GaitEvent, "/gait_events", events.append,
                                 QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    return states, events


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def test_node_publishes_the_whole_trial_then_exits(ros_node, spin_until, start_node,
                                                   trial_file):
    states, events = _collect(ros_node)
    replay = start_node("trial_replay", "--ros-args", "-p", f"trial_file:={trial_file}",
                        "-p", "rate_scale:=2.0", "-p", "start_offset_s:=0.5",
                        "-p", "wait_for_subscribers:=1")
    assert spin_until(ros_node, lambda: not replay.alive(), 30.0), replay.output()
    spin_until(ros_node, lambda: len(states) >= 150, 2.0)
    assert replay.process.returncode == 0, replay.output()
    trial = make_trial()
    assert len(states) == 150, replay.output()  # 2 s at 100 Hz, minus the 0.5 s offset
    position = np.array([m.position for m in states])
    np.testing.assert_array_equal(position, trial.angles_rad["hip"][50:, :, 0])
    effort = np.array([m.effort for m in states])
    np.testing.assert_array_equal(effort, trial.moments_nm_per_kg["hip"][50:, :, 0])
    assert all(list(m.name) == ["left_hip_joint", "right_hip_joint"] for m in states)
    stamps = np.array([_stamp_ns(m) for m in states])
    np.testing.assert_allclose(np.diff(stamps), 5_000_000, atol=1)  # 10 ms / rate_scale 2
    assert abs(stamps[0] * 1e-9 - time.time()) < 30.0  # ROS clock (system time), not trial time
    # Events at and after the offset: strikes at 1.0 (L), 0.5/1.5 (R), foot off 0.6/1.6 (L).
    assert len(events) == 5
    assert [(e.side, e.kind) for e in events] == [(1, 0), (0, 1), (0, 0), (1, 0), (0, 1)]
    assert _stamp_ns(events[2]) - stamps[0] == pytest.approx(250_000_000, abs=1)


def test_node_loops_until_stopped(ros_node, spin_until, start_node, trial_file):
    states, _ = _collect(ros_node)
    replay = start_node("trial_replay", "--ros-args", "-p", f"trial_file:={trial_file}",
                        "-p", "rate_scale:=4.0", "-p", "loop:=true",
                        "-p", "start_offset_s:=1.5", "-p", "wait_for_subscribers:=1",
                        "-p", "joint_names:=[hip_l, hip_r]")
    assert spin_until(ros_node, lambda: len(states) >= 120, 20.0), replay.output()
    assert replay.alive()
    position = np.array([m.position for m in states[:120]])
    expected = np.tile(make_trial().angles_rad["hip"][150:, :, 0], (3, 1))[:120]
    np.testing.assert_array_equal(position, expected)
    assert list(states[0].name) == ["hip_l", "hip_r"]
    assert np.all(np.diff([_stamp_ns(m) for m in states]) > 0)
    assert replay.stop() == 0


@pytest.mark.parametrize("params, message", [
    (["-p", "trial_file:=/nonexistent/trial.h5"], "/nonexistent/trial.h5: no such file"),
    ([], "trial_file is empty"),
    (["-p", "trial_file:={trial}", "-p", "joint_names:=[only_one]"],
     "joint_names must name two joints"),
    (["-p", "trial_file:={trial}", "-p", "start_offset_s:=60.0"], "past the end"),
])
def test_node_refuses_bad_input_with_one_line(ros_node, spin_until, start_node, params,
                                              message, trial_file):
    params = [p.format(trial=trial_file) for p in params]
    replay = start_node("trial_replay", "--ros-args", *params)
    assert spin_until(ros_node, lambda: not replay.alive(), 20.0)
    assert replay.process.returncode == 1
    assert message in replay.output()
    assert "Traceback" not in replay.output()
