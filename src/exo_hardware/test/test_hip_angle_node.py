"""hip_angle_publisher as a process over real DDS: calibration, refusal, published angles."""

import time

import pytest

pytest.importorskip("rclpy")

from exo_common.topics import ACTUATOR_STATE, JOINT_STATES  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from exo_msgs.msg import ActuatorState  # noqa: E402

ARGS = ("--ros-args", "-p", "calibration_s:=0.5", "-p", "gear_ratio:=10.0",
        "-p", "spool_radius_m:=0.02", "-p", "hip_moment_arm_m:=0.1")


def feed(node, spin_until, publisher, positions, duration_s, until=lambda: False, sent=None):
    """Publish /actuator/state at about 100 Hz; positions(t) -> (left, right) motor rad."""
    start = time.monotonic()
    sent = [] if sent is None else sent  # the stamps published

    def step():
        t = time.monotonic() - start
        msg = ActuatorState()
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.left_motor_position_rad, msg.right_motor_position_rad = positions(t)
        publisher.publish(msg)
        sent.append((msg.header.stamp.sec, msg.header.stamp.nanosec))
        return until() or t > duration_s

    while not spin_until(node, step, 0.01):
        pass


def test_calibrates_on_a_still_wearer_and_publishes_geometry_angles(ros_node, spin_until,
                                                                    start_node):
    received = []
    ros_node.create_subscription(JointState, "/joint_states", received.append,
                                 qos_profile_sensor_data)
    state = ros_node.create_publisher(ActuatorState, "/actuator/state",
                                      ACTUATOR_STATE.publish_qos)
    proc = start_node("hip_angle_publisher", *ARGS)
    assert spin_until(ros_node, lambda: ros_node.count_subscribers("/actuator/state") > 0, 30.0)
    sent = []  # every /actuator/state stamp published
    feed(ros_node, spin_until, state, lambda t: (5.0, 5.0), 20.0, lambda: bool(received), sent)
    assert received, proc.output()
    assert received[0].position == pytest.approx([0.0, 0.0], abs=1e-9)
    received.clear()
    # 10 motor rad reeled in on the left: the extension cable extends the left hip 0.2 rad
    feed(ros_node, spin_until, state, lambda t: (15.0, 5.0), 5.0, lambda: len(received) > 3,
         sent)
    last = received[-1]
    assert list(last.name) == ["left_hip_joint", "right_hip_joint"]
    assert last.position == pytest.approx([-0.2, 0.0])
    # stamp source: the /actuator/state message's own stamp (when the encoders were read)
    assert {(m.header.stamp.sec, m.header.stamp.nanosec) for m in received} <= set(sent)
    # the QoS docs/hardware.md states: the topic table's (reliable; discovery does not
    # carry the depth)
    offered = ros_node.get_publishers_info_by_topic("/joint_states")
    assert [i.qos_profile.reliability for i in offered] == [JOINT_STATES.publish_qos.reliability]
    assert "zero posture calibrated" in proc.output()


def test_moving_wearer_is_refused_and_nothing_is_published(ros_node, spin_until, start_node):
    received = []
    ros_node.create_subscription(JointState, "/joint_states", received.append,
                                 qos_profile_sensor_data)
    state = ros_node.create_publisher(ActuatorState, "/actuator/state",
                                      ACTUATOR_STATE.publish_qos)
    proc = start_node("hip_angle_publisher", *ARGS)
    assert spin_until(ros_node, lambda: ros_node.count_subscribers("/actuator/state") > 0, 30.0)
    refused = lambda: "zero-posture calibration refused" in proc.output()  # noqa: E731
    # swinging 5 motor rad = 0.1 rad of hip, far above still_range_rad 0.02
    feed(ros_node, spin_until, state, lambda t: (5.0 + 5.0 * (int(t * 20) % 2), 5.0), 20.0,
         refused)
    assert refused(), proc.output()
    assert "left hip moved" in proc.output()
    assert not received


def test_imu_source_reads_opensourceleg_imus_at_its_rate(ros_node, spin_until, start_node):
    pytest.importorskip("opensourceleg", reason="opensourceleg is an optional hardware"
                        " dependency (tools/requirements-hardware.txt)")
    received = []
    ros_node.create_subscription(JointState, "/joint_states", received.append,
                                 qos_profile_sensor_data)
    # offline IMUs read a constant pitch: a still wearer, then hip angles of zero
    proc = start_node("hip_angle_publisher", "--ros-args", "-p", "source:=imu",
                      "-p", "offline:=true", "-p", "calibration_s:=0.5", "-p", "rate_hz:=50.0")
    assert spin_until(ros_node, lambda: len(received) >= 10, 60.0), proc.output()
    assert all(list(m.position) == [0.0, 0.0] for m in received)
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in received]
    assert 0.005 < (stamps[-1] - stamps[0]) / (len(stamps) - 1) < 0.2  # about 1 / 50 Hz
