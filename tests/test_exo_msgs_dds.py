"""Each exo_msgs type crosses real DDS between two processes with every field intact."""

import subprocess
import sys
import textwrap

import pytest

exo_msgs = pytest.importorskip("exo_msgs.msg")

# Distinctive values per type; the publisher process fills the same values from this table.
SAMPLES = {
    "HipMomentEstimate": dict(
        left_moment_nm_per_kg=0.81, right_moment_nm_per_kg=-0.42, left_valid=True,
        right_valid=False, model_id="P01-tcn", backend="onnxruntime", ensemble_size=3,
        inference_latency_s=0.00025,
    ),
    "AssistanceCommand": dict(
        state=2, enabled=True, fade_scale=0.5, input_ok=False, left_torque_nm=12.5,
        right_torque_nm=-3.0,
        left_force_n=150.0, right_force_n=0.0,
    ),
    "MotorCommand": dict(enabled=True, left_velocity_rad_s=3.25, right_velocity_rad_s=-1.5),
    "CableForceReference": dict(enabled=True, left_force_n=120.5, right_force_n=3.0,
                                left_force_rate_n_per_s=-400.0, right_force_rate_n_per_s=25.0),
    "ActuatorState": dict(
        mode=2, left_force_reference_n=130.0, right_force_reference_n=1.0,
        left_cable_force_n=148.0, right_cable_force_n=2.0, left_motor_position_rad=1.5,
        right_motor_position_rad=-0.5, left_motor_velocity_rad_s=3.0,
        right_motor_velocity_rad_s=-1.0, left_fault_flags=5, right_fault_flags=0,
    ),
    "ControllerState": dict(
        watchdog=1, enabled=True, output_scale=0.25, left_force_reference_n=100.0,
        right_force_reference_n=0.0, left_force_error_n=2.5, right_force_error_n=-0.5,
        loop_period_s=0.0071,
    ),
    "GaitEvent": dict(side=1, kind=0),
}

PUBLISHER = textwrap.dedent(
    """
    import sys, time, rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    import exo_msgs.msg as m
    samples = eval(sys.argv[1])
    rclpy.init()
    node = rclpy.create_node("exo_msgs_dds_publisher")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {name: node.create_publisher(getattr(m, name), "test/" + name, qos) for name in samples}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for name, fields in samples.items():
            msg = getattr(m, name)(**fields)
            msg.header.frame_id = "frame_" + name
            msg.header.stamp.sec = 42
            pubs[name].publish(msg)
        rclpy.spin_once(node, timeout_sec=0.05)
    """
)


def test_every_exo_msgs_type_round_trips_between_processes(ros_node, spin_until):
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    received = {}
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    for name in SAMPLES:
        ros_node.create_subscription(
            getattr(exo_msgs, name), "test/" + name,
            lambda msg, name=name: received.setdefault(name, msg), qos,
        )
    publisher = subprocess.Popen([sys.executable, "-c", PUBLISHER, repr(SAMPLES)])
    try:
        assert spin_until(ros_node, lambda: len(received) == len(SAMPLES), 20.0), (
            f"received only {sorted(received)}"
        )
    finally:
        publisher.terminate()
        publisher.wait(timeout=10)
    for name, fields in SAMPLES.items():
        msg = received[name]
        assert msg.header.frame_id == "frame_" + name
        assert msg.header.stamp.sec == 42
        for field, value in fields.items():
            assert getattr(msg, field) == pytest.approx(value), f"{name}.{field}"
