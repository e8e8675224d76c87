"""``hip_angle_publisher``: live hip angles as sensor_msgs/JointState (exo_hardware.hip_angle).

Publishes ``joint_states`` (both hips: position rad, flexion +; velocity rad/s by finite
difference) with the topic table's QoS (exo_common.topics). Source ``encoders``: one message
per ``actuator/state`` message (the actuator node's ``state_publish_rate_hz``, 200 Hz by
default), stamped with that message's stamp (the actuator
node's clock when it read the encoders). Source ``imu``: a timer at ``rate_hz`` reads both
thigh IMUs through opensourceleg and stamps with this node's clock at the read. Nothing is
published until the zero-posture calibration has accepted a still window; a window with
motion is refused with a log line that says which hip moved how much, and calibration repeats.
"""

from __future__ import annotations

import time

from exo_common.node_params import declare_config
from exo_common.node_runner import run_node
from exo_common.params import ConfigError
from exo_common.topics import ACTUATOR_STATE, JOINT_STATES, publisher, stamp_s, subscription
from rclpy.node import Node
from sensor_msgs.msg import JointState

from exo_hardware.hip_angle import HipAngleConfig, HipAngleTracker, NotStill
from exo_msgs.msg import ActuatorState


class HipAnglePublisher(Node):
    """Hip angles from actuator encoders or thigh IMUs, zeroed at start-up."""

    def __init__(self) -> None:
        super().__init__("hip_angle_publisher")
        self.config: HipAngleConfig = declare_config(self, HipAngleConfig)
        self.tracker = HipAngleTracker(self.config)
        self.imus = None
        self._publisher = publisher(self, JOINT_STATES)
        if self.config.source == "encoders":
            subscription(self, ACTUATOR_STATE, self._on_actuator_state)
        else:
            self.imus = self._open_imus()
            self.create_timer(1.0 / self.config.rate_hz, self._on_timer)
        self.get_logger().info(f"hip angles from {self.config.source}: stand still for"
                               f" {self.config.calibration_s:g} s (zero posture)")

    def _open_imus(self):
        try:
            from exo_hardware.osl_ports import ThighImus

            imus = ThighImus(self.config.left_imu_port, self.config.right_imu_port,
                             self.config.rate_hz, self.config.offline)
            imus.start()
        except Exception as exc:  # a missing library or device is a configuration problem
            raise ConfigError(f"hip_angle_publisher: thigh IMUs: {exc}") from exc
        return imus

    def _on_actuator_state(self, msg: ActuatorState) -> None:
        self._process(stamp_s(msg.header.stamp), msg.header.stamp,
                      (msg.left_motor_position_rad, msg.right_motor_position_rad))

    def _on_timer(self) -> None:
        stamp = self.get_clock().now().to_msg()
        try:
            raw = self.imus.read()
        except Exception as exc:  # an IMU read error skips one sample, loudly
            self.get_logger().error(f"thigh IMU read failed: {exc}", throttle_duration_sec=1.0)
            return
        self._process(time.monotonic(), stamp, raw)

    def _process(self, now_s: float, stamp, raw: tuple[float, float]) -> None:
        was_calibrated = self.tracker.calibrated
        try:
            sample = self.tracker.update(now_s, raw)
        except NotStill as exc:
            self.get_logger().error(f"zero-posture calibration refused: {exc}")
            return
        if self.tracker.calibrated and not was_calibrated:
            self.get_logger().info("zero posture calibrated; publishing /joint_states")
        if sample is None:
            return
        msg = JointState(name=list(self.config.joint_names), position=list(sample.position_rad),
                         velocity=list(sample.velocity_rad_s))
        msg.header.stamp = stamp
        self._publisher.publish(msg)

    def destroy_node(self) -> None:
        """Stop the IMUs, then the node."""
        if self.imus is not None:
            self.imus.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Console entry point ``hip_angle_publisher``."""
    return run_node(HipAnglePublisher, args)
