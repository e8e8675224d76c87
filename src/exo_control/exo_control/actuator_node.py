"""ROS 2 node ``simulated_actuator``: /actuator/motor_command -> driver -> /actuator/state.

Hosts one exo_control.actuator.ActuatorDriver (the simulated Bowden-cable actuator unless
``driver`` names another) and updates it in a PeriodicLoop thread at ``rate_hz``. The wearer's
hip angles from /joint_states move the simulated cable anchors; hardware drivers ignore them.
"""

from __future__ import annotations

import math
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import JointState

from exo_control.actuator import (
    ActuatorNodeConfig,
    ActuatorReading,
    Fault,
    SimulatedActuatorConfig,
    load_driver,
)
from exo_control.common_node import (
    ERROR,
    OK,
    TOPIC_QOS,
    ConfigError,
    declare_config,
    diagnostic_status,
    publish_diagnostics,
    run_node,
    watch_live_parameters,
)
from exo_control.loop_timing import PeriodicLoop
from exo_msgs.msg import ActuatorState, MotorCommand


class ActuatorNode(Node):
    """Bridges motor commands and actuator state to a driver, simulated or hardware."""

    def __init__(self) -> None:
        super().__init__("simulated_actuator")
        self.config: ActuatorNodeConfig = declare_config(self, ActuatorNodeConfig)
        sim_config = None
        if self.config.driver == "simulated":
            sim_config = declare_config(self, SimulatedActuatorConfig)
        try:
            self.driver = load_driver(self.config.driver, sim_config)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{self.get_name()}: {exc}") from exc
        self._apply_config(self.config)
        watch_live_parameters(self, lambda: self.config, self._apply_config)
        self._lock = threading.Lock()
        self._publisher = self.create_publisher(ActuatorState, "/actuator/state",
                                                TOPIC_QOS["/actuator/state"])
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics",
                                                  TOPIC_QOS["/diagnostics"])
        self.create_subscription(MotorCommand, "/actuator/motor_command", self._on_command,
                                 TOPIC_QOS["/actuator/motor_command"])
        self.create_subscription(JointState, "/joint_states", self._on_joint_states,
                                 TOPIC_QOS["/joint_states"])
        self._last: ActuatorReading | None = None
        self.create_timer(1.0, self._publish_diagnostics)
        self.loop = PeriodicLoop(1.0 / self.config.rate_hz, self._cycle, name="actuator")
        self.loop.start()
        self.get_logger().info(f"actuator driver '{self.config.driver}' at"
                               f" {self.config.rate_hz:g} Hz")

    def _apply_config(self, config: ActuatorNodeConfig) -> None:
        self.config = config
        if hasattr(self.driver, "injected_faults"):
            self.driver.injected_faults = Fault(config.inject_fault_flags)

    def _on_command(self, msg: MotorCommand) -> None:
        with self._lock:
            self.driver.command(msg.left_velocity_rad_s, msg.right_velocity_rad_s, msg.enabled,
                                time.monotonic())

    def _on_joint_states(self, msg: JointState) -> None:
        angles, rates = [], []
        for name in self.config.joint_names:
            if name not in msg.name:
                return
            i = msg.name.index(name)
            angles.append(msg.position[i] if i < len(msg.position) else math.nan)
            rates.append(msg.velocity[i] if i < len(msg.velocity) else 0.0)
        with self._lock:
            self.driver.set_hip_angles(angles[0], angles[1], rates[0], rates[1])

    def _cycle(self, now_s: float) -> None:
        with self._lock:
            reading = self.driver.update(now_s)
        self._last = reading
        msg = ActuatorState()
        msg.header.stamp = self.get_clock().now().to_msg()
        for side in ("left", "right"):
            value = getattr(reading, side)
            setattr(msg, f"{side}_cable_force_n", value.force_n)
            setattr(msg, f"{side}_motor_position_rad", value.position_rad)
            setattr(msg, f"{side}_motor_velocity_rad_s", value.velocity_rad_s)
            setattr(msg, f"{side}_fault_flags", value.fault_flags)
        self._publisher.publish(msg)

    def _publish_diagnostics(self) -> None:
        if self.loop.error is not None:
            self.get_logger().fatal(f"actuator loop stopped: {self.loop.error!r}")
            raise self.loop.error
        reading = self._last
        if reading is None:
            return
        faults = Fault(reading.left.fault_flags | reading.right.fault_flags)
        publish_diagnostics(self, self._diagnostics, [diagnostic_status(
            "exo_control: actuator", self.config.driver, ERROR if faults else OK,
            f"faults: {faults!r}" if faults else "ok",
            {"left_cable_force_n": reading.left.force_n,
             "right_cable_force_n": reading.right.force_n,
             "left_fault_flags": reading.left.fault_flags,
             "right_fault_flags": reading.right.fault_flags, **self.loop.stats.summary()})])

    def close(self) -> None:
        """Stop the update thread and release the driver."""
        self.loop.stop()
        self.driver.close()


def main(args: list[str] | None = None) -> int:
    """Console entry point ``simulated_actuator``."""
    return run_node(ActuatorNode, args)
