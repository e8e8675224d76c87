"""Bag recording: exo_msgs types from .msg text, safe bag naming, and the node over real DDS."""

import signal

import numpy as np
import pytest
from exo_control.recorder import (
    DEFAULT_TOPICS,
    GRAPH_TOPICS,
    BagRecording,
    RecorderError,
    exo_msgs_msg_dir,
    exo_typestore,
    resolve_topics,
)
from rosbags.highlevel import AnyReader


def read_bag(path):
    """Every message of a bag, decoded, grouped by topic in log order."""
    out = {}
    with AnyReader([path], default_typestore=exo_typestore()) as reader:
        for connection, stamp, raw in reader.messages():
            msg = reader.deserialize(raw, connection.msgtype)
            out.setdefault(connection.topic, []).append((stamp, msg))
    return out


def test_typestore_knows_every_exo_message_field_from_the_msg_files():
    store = exo_typestore()
    for msg_file in exo_msgs_msg_dir().glob("*.msg"):
        msgtype = f"exo_msgs/msg/{msg_file.stem}"
        assert msgtype in store.types
        fields = [line.split()[1] for line in msg_file.read_text().splitlines()
                  if line.strip() and not line.startswith("#") and "=" not in line.split("#")[0]]
        assert list(store.types[msgtype].__dataclass_fields__)[: len(fields)] == fields


def test_rosbags_cdr_agrees_with_rclpy():
    from rclpy.serialization import deserialize_message

    from exo_msgs.msg import ActuatorState

    store = exo_typestore()
    cls = store.types["exo_msgs/msg/ActuatorState"]
    header = store.types["std_msgs/msg/Header"](
        stamp=store.types["builtin_interfaces/msg/Time"](sec=3, nanosec=7), frame_id="x")
    msg = cls(header=header, mode=cls.MODE_RELEASING, left_cable_force_n=12.5,
              right_cable_force_n=0.0, left_force_reference_n=0.0, right_force_reference_n=0.0,
              left_motor_position_rad=1.0, right_motor_position_rad=-1.0,
              left_motor_velocity_rad_s=2.0, right_motor_velocity_rad_s=-2.0,
              left_fault_flags=cls.FAULT_SENSOR, right_fault_flags=0)
    decoded = deserialize_message(bytes(store.serialize_cdr(msg, "exo_msgs/msg/ActuatorState")),
                                  ActuatorState)
    assert decoded.left_cable_force_n == 12.5 and decoded.mode == ActuatorState.MODE_RELEASING
    assert decoded.left_fault_flags == ActuatorState.FAULT_SENSOR
    assert decoded.header.stamp.nanosec == 7


def test_recorded_topics_are_the_topic_tables():
    from exo_common.topics import STREAMS

    assert GRAPH_TOPICS == {"/" + name: s.msg_type for name, s in STREAMS.items()}


def test_resolve_topics_refuses_unknown_names():
    assert resolve_topics(DEFAULT_TOPICS)["/actuator/state"] == "exo_msgs/msg/ActuatorState"
    with pytest.raises(RecorderError, match="/chatter"):
        resolve_topics(["/joint_states", "/chatter"])
    with pytest.raises(RecorderError, match="no topics"):
        resolve_topics([])


def test_bag_appears_only_when_closed_and_is_never_overwritten(tmp_path):
    store = exo_typestore()
    bag = BagRecording(tmp_path / "run", {"/assistance/enable": "std_msgs/msg/Bool"})
    assert not (tmp_path / "run").exists()
    msg = store.types["std_msgs/msg/Bool"](data=True)
    bag.write("/assistance/enable", 5, store.serialize_cdr(msg, "std_msgs/msg/Bool"))
    assert bag.close() == tmp_path / "run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["metadata.yaml", "run.mcap"]
    assert [(s, m.data) for s, m in read_bag(tmp_path / "run")["/assistance/enable"]] == [
        (5, True)]
    with pytest.raises(RecorderError, match="already exists"):
        BagRecording(tmp_path / "run", {"/assistance/enable": "std_msgs/msg/Bool"})


def test_a_partial_recording_is_kept_and_blocks_a_new_one(tmp_path):
    BagRecording(tmp_path / "run", {"/joint_states": "sensor_msgs/msg/JointState"})
    with pytest.raises(RecorderError, match="partial recording"):
        BagRecording(tmp_path / "run", {"/joint_states": "sensor_msgs/msg/JointState"})
    discarded = BagRecording(tmp_path / "other", {"/joint_states": "sensor_msgs/msg/JointState"})
    discarded.discard()
    assert not list(tmp_path.glob("*other*"))


# --- the node over DDS ----------------------------------------------------------------------

def test_node_records_graph_topics_until_sigint(ros_node, spin_until, start_node, tmp_path):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState

    from exo_msgs.msg import ControllerState, MotorCommand

    bag_path = tmp_path / "graph_bag"
    recorder = start_node("topic_recorder", "--ros-args", "-p", f"output:={bag_path}")
    reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    joints = ros_node.create_publisher(JointState, "/joint_states", reliable)
    motor = ros_node.create_publisher(MotorCommand, "/actuator/motor_command", reliable)
    controller = ros_node.create_publisher(
        ControllerState, "/controller/state",
        QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
    assert spin_until(ros_node, lambda: joints.get_subscription_count() > 0
                      and motor.get_subscription_count() > 0
                      and controller.get_subscription_count() > 0, 20.0), recorder.output()
    for i in range(50):
        joints.publish(JointState(name=["left_hip_joint", "right_hip_joint"],
                                  position=[0.01 * i, -0.01 * i], velocity=[0.0, 0.0],
                                  effort=[float(i), 0.5]))
        motor.publish(MotorCommand(enabled=True, left_velocity_rad_s=float(i),
                                   right_velocity_rad_s=0.0))
        controller.publish(ControllerState(watchdog=ControllerState.WATCHDOG_STALE_COMMAND,
                                           output_scale=0.5))
        spin_until(ros_node, lambda: False, 0.005)
    spin_until(ros_node, lambda: False, 0.5)
    assert not bag_path.exists()  # still recording
    assert recorder.stop(signal.SIGINT) == 0, recorder.log_path.read_text()
    assert "wrote" in recorder.log_path.read_text()  # output() needs the log still open
    recorded = read_bag(bag_path)
    positions = np.array([m.position for _, m in recorded["/joint_states"]])
    np.testing.assert_allclose(positions[:, 0], 0.01 * np.arange(50))
    assert [m.left_velocity_rad_s for _, m in recorded["/actuator/motor_command"]] == list(
        map(float, range(50)))
    assert len(recorded["/controller/state"]) > 0  # best effort: may drop, must not be empty
    assert all(m.watchdog == 1 for _, m in recorded["/controller/state"])
    receive_times = [s for s, _ in recorded["/joint_states"]]
    assert receive_times == sorted(receive_times)


def test_node_refuses_to_overwrite_a_bag(ros_node, spin_until, start_node, tmp_path):
    existing = tmp_path / "bag"
    existing.mkdir()
    (existing / "keep.txt").write_text("user data")
    recorder = start_node("topic_recorder", "--ros-args", "-p", f"output:={existing}")
    assert spin_until(ros_node, lambda: not recorder.alive(), 20.0)
    assert recorder.process.returncode == 1
    assert "already exists" in recorder.output() and "Traceback" not in recorder.output()
    assert (existing / "keep.txt").read_text() == "user data"
