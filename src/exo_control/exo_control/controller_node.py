"""ROS 2 node ``admittance_controller``: /assistance/command + /actuator/state -> motor commands.

Subscriptions only cache the latest message (with its monotonic receive time); the control
cycle runs in a PeriodicLoop thread at ``rate_hz`` (exo_control.loop_timing), publishes
/actuator/motor_command every cycle and /controller/state at ``state_publish_rate_hz``.
Loop-period statistics go to /diagnostics once a second.
"""

from __future__ import annotations

import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node

from exo_control.actuator import ActuatorReading, SideReading
from exo_control.common_node import (
    ERROR,
    OK,
    TOPIC_QOS,
    WARN,
    declare_config,
    diagnostic_status,
    publish_diagnostics,
    run_node,
    watch_live_parameters,
)
from exo_control.controller import (
    AdmittanceController,
    ControllerConfig,
    ControllerOutput,
    Watchdog,
)
from exo_control.loop_timing import PeriodicLoop
from exo_msgs.msg import ActuatorState, AssistanceCommand, ControllerState, MotorCommand


def reading_from_msg(msg: ActuatorState) -> ActuatorReading:
    """exo_msgs/ActuatorState -> ActuatorReading."""
    return ActuatorReading(*(SideReading(
        getattr(msg, f"{side}_cable_force_n"), getattr(msg, f"{side}_motor_position_rad"),
        getattr(msg, f"{side}_motor_velocity_rad_s"), getattr(msg, f"{side}_fault_flags"))
        for side in ("left", "right")))


class AdmittanceControllerNode(Node):
    """Runs the admittance + PD controller and its watchdog in a soft real-time thread."""

    def __init__(self, **node_options) -> None:
        super().__init__("admittance_controller", **node_options)
        self.config: ControllerConfig = declare_config(self, ControllerConfig)
        self.controller = AdmittanceController(self.config)
        self._lock = threading.Lock()
        watch_live_parameters(self, lambda: self.config, self._apply_config)
        self._motor = self.create_publisher(MotorCommand, "/actuator/motor_command",
                                            TOPIC_QOS["/actuator/motor_command"])
        self._state = self.create_publisher(ControllerState, "/controller/state",
                                            TOPIC_QOS["/controller/state"])
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics",
                                                  TOPIC_QOS["/diagnostics"])
        self.create_subscription(AssistanceCommand, "/assistance/command", self._on_command,
                                 TOPIC_QOS["/assistance/command"])
        self.create_subscription(ActuatorState, "/actuator/state", self._on_state,
                                 TOPIC_QOS["/actuator/state"])
        self._state_every = max(1, round(self.config.rate_hz / self.config.state_publish_rate_hz))
        self._cycles = 0
        self._last: ControllerOutput | None = None
        self.create_timer(1.0, self._publish_diagnostics)
        self.loop = PeriodicLoop(1.0 / self.config.rate_hz, self._cycle, name="control")
        self.loop.start()
        self.get_logger().info(f"admittance controller at {self.config.rate_hz:g} Hz")

    def _apply_config(self, config: ControllerConfig) -> None:
        with self._lock:
            self.config = config
            self.controller.update_live(config)

    def _on_command(self, msg: AssistanceCommand) -> None:
        with self._lock:
            self.controller.set_command(msg.left_force_n, msg.right_force_n, time.monotonic())

    def _on_state(self, msg: ActuatorState) -> None:
        reading = reading_from_msg(msg)
        with self._lock:
            self.controller.set_measurement(reading, time.monotonic())

    def _cycle(self, now_s: float) -> None:
        with self._lock:
            out = self.controller.step(now_s)
        self._last = out
        stamp = self.get_clock().now().to_msg()
        command = MotorCommand(enabled=out.motor_enabled,
                               left_velocity_rad_s=out.left.velocity_command_rad_s,
                               right_velocity_rad_s=out.right.velocity_command_rad_s)
        command.header.stamp = stamp
        self._motor.publish(command)
        self._cycles += 1
        if self._cycles % self._state_every == 0:
            state = ControllerState(
                watchdog=int(out.watchdog), output_scale=out.output_scale,
                left_force_reference_n=out.left.force_reference_n,
                right_force_reference_n=out.right.force_reference_n,
                left_force_error_n=out.left.force_error_n,
                right_force_error_n=out.right.force_error_n,
                left_velocity_command_rad_s=out.left.velocity_command_rad_s,
                right_velocity_command_rad_s=out.right.velocity_command_rad_s,
                loop_period_s=out.dt_s)
            state.header.stamp = stamp
            self._state.publish(state)

    def _publish_diagnostics(self) -> None:
        if self.loop.error is not None:
            self.get_logger().fatal(f"control loop stopped: {self.loop.error!r}")
            raise self.loop.error
        out = self._last
        stats = self.loop.stats.summary()
        if out is None:
            return
        level = OK if out.watchdog == Watchdog.OK else (
            WARN if out.watchdog == Watchdog.STALE_COMMAND else ERROR)
        publish_diagnostics(self, self._diagnostics, [diagnostic_status(
            "exo_control: admittance_controller", "controller", level,
            f"watchdog {out.watchdog.name}",
            {"watchdog": out.watchdog.name, "output_scale": out.output_scale,
             "motor_enabled": out.motor_enabled, **stats})])

    def watchdog_name(self) -> str:
        """Watchdog verdict of the latest cycle ("none" before the first)."""
        return self._last.watchdog.name if self._last else "none"

    def close(self) -> None:
        """Stop the control thread, then command a brake once."""
        self.loop.stop()
        if self.context.ok():
            self._motor.publish(MotorCommand(enabled=False))


def main(args: list[str] | None = None) -> int:
    """Console entry point ``admittance_controller``."""
    return run_node(AdmittanceControllerNode, args)
