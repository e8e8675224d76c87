"""ROS 2 node ``assistance_profile``: /hip_moment/estimate -> /assistance/command.

Thin wrapper around exo_control.assistance.AssistanceProfile: it caches the latest estimate,
runs the profile on a fixed-rate timer (so a stale estimate is noticed even when no message
arrives) and follows /assistance/enable (std_msgs/Bool, transient local).
"""

from __future__ import annotations

import time

from exo_common.diagnostics import OK, WARN, Diagnostics
from exo_common.node_params import declare_config, watch_live_parameters
from exo_common.node_runner import request_realtime_priority, run_node
from exo_common.topics import (
    ASSISTANCE_COMMAND,
    ASSISTANCE_ENABLE,
    HIP_MOMENT_ESTIMATE,
    publisher,
    stamp_s,
    subscription,
)
from rclpy.node import Node
from std_msgs.msg import Bool

from exo_control.assistance import AssistanceConfig, AssistanceProfile, EstimateSample
from exo_msgs.msg import AssistanceCommand, HipMomentEstimate


class AssistanceProfileNode(Node):
    """Turns hip-moment estimates into desired cable forces with an enable state machine."""

    def __init__(self) -> None:
        super().__init__("assistance_profile")
        self.config: AssistanceConfig = declare_config(self, AssistanceConfig)
        request_realtime_priority(self, self.config.realtime_priority)
        self.profile = AssistanceProfile(self.config)
        watch_live_parameters(self, lambda: self.config, self._apply_config,
                              self._on_rejected_parameter)
        self._publisher = publisher(self, ASSISTANCE_COMMAND)
        self._diagnostics = Diagnostics(self, "exo_control", "assistance_profile")
        subscription(self, HIP_MOMENT_ESTIMATE, self._on_estimate)
        subscription(self, ASSISTANCE_ENABLE, self._on_enable)
        self.create_timer(1.0 / self.config.rate_hz, self._tick)
        self.create_timer(1.0, self._publish_diagnostics)
        self._last = None
        self.get_logger().info(
            f"assistance profile at {self.config.rate_hz:g} Hz, gain {self.config.gain:g},"
            f" {self.config.direction} cable, side {self.config.side},"
            f" {'enabled' if self.config.enabled_on_start else 'disabled'} on start")

    def _apply_config(self, config: AssistanceConfig) -> None:
        self.config = config
        self.profile.update_live(config)

    def _on_rejected_parameter(self, reason: str) -> None:
        """Whoever sends absurd settings is not trusted to drive assistance: fade it out."""
        if self.profile.enable.requested:
            self.get_logger().error(
                f"absurd parameter refused ({reason}): assistance fading out until re-enabled"
                " on /assistance/enable")
        self.profile.set_enabled(False)

    def _on_estimate(self, msg: HipMomentEstimate) -> None:
        self.profile.receive(EstimateSample(
            stamp_s=stamp_s(msg.header.stamp), received_s=time.monotonic(),
            left_moment_nm_per_kg=msg.left_moment_nm_per_kg,
            right_moment_nm_per_kg=msg.right_moment_nm_per_kg,
            left_valid=msg.left_valid, right_valid=msg.right_valid))

    def _on_enable(self, msg: Bool) -> None:
        if msg.data != self.profile.enable.requested:
            self.get_logger().info(f"assistance {'enable' if msg.data else 'disable'} requested")
        self.profile.set_enabled(msg.data)

    def _tick(self) -> None:
        out = self.profile.step(time.monotonic())
        self._last = out
        msg = AssistanceCommand(
            state=int(out.state), enabled=out.enabled, fade_scale=out.fade_scale,
            input_ok=out.left_input_ok and out.right_input_ok,
            left_torque_nm=out.left_torque_nm, right_torque_nm=out.right_torque_nm,
            left_force_n=out.left_force_n, right_force_n=out.right_force_n)
        msg.header.stamp = self.get_clock().now().to_msg()
        self._publisher.publish(msg)

    def _publish_diagnostics(self) -> None:
        out = self._last
        if out is None:
            return
        inputs_ok = out.left_input_ok and out.right_input_ok
        message = "ok" if inputs_ok else "estimate stale or invalid: assistance faded out"
        self._diagnostics.publish(
            OK if inputs_ok else WARN, message,
            {"state": out.state.name, "fade_scale": out.fade_scale,
             "left_force_n": out.left_force_n, "right_force_n": out.right_force_n,
             "left_estimate_ok": out.left_input_ok, "right_estimate_ok": out.right_input_ok,
             "out_of_order_estimates": self.profile.rejected_out_of_order,
             "gain": self.config.gain, "body_mass_kg": self.config.body_mass_kg},
            hardware_id="assistance")


def main(args: list[str] | None = None) -> int:
    """Console entry point ``assistance_profile``."""
    return run_node(AssistanceProfileNode, args)
