"""ROS 2 lifecycle node ``admittance_controller``: assistance command -> cable-force reference.

The reference level of the controller (exo_control.controller) at ``rate_hz`` (200 Hz by
default) in a PeriodicLoop thread; the actuator's own fast loop tracks the reference
(exo_control.force_loop). Subscriptions only cache the latest message with its monotonic
receive time. Lifecycle: configure validates the parameters, activate starts the loop,
deactivate/shutdown/SIGINT stop it and send one reference with ``enabled`` false, so the
actuator releases the cable to slack at once instead of waiting for its reference timeout.
"""

from __future__ import annotations

import threading
import time

from exo_common.diagnostics import ERROR, OK, WARN, Diagnostics
from exo_common.node_params import declare_config, read_config, watch_live_parameters
from exo_common.node_runner import ManagedNode, request_realtime_priority, run_node
from exo_common.params import ConfigError
from exo_common.topics import (
    ACTUATOR_STATE,
    ASSISTANCE_COMMAND,
    CONTROLLER_STATE,
    FORCE_REFERENCE,
    publisher,
    subscription,
)
from rclpy.lifecycle import TransitionCallbackReturn

from exo_control.actuator import ActuatorReading, SideReading
from exo_control.controller import (
    ControllerConfig,
    ControllerOutput,
    ForceReferenceController,
    Watchdog,
)
from exo_control.loop_timing import PeriodicLoop
from exo_msgs.msg import ActuatorState, AssistanceCommand, CableForceReference, ControllerState


def reading_from_msg(msg: ActuatorState) -> ActuatorReading:
    """exo_msgs/ActuatorState -> ActuatorReading."""
    return ActuatorReading(*(SideReading(
        getattr(msg, f"{side}_cable_force_n"), getattr(msg, f"{side}_motor_position_rad"),
        getattr(msg, f"{side}_motor_velocity_rad_s"), getattr(msg, f"{side}_fault_flags"))
        for side in ("left", "right")))


class AdmittanceControllerNode(ManagedNode):
    """Runs the force-reference level and its watchdog in a soft real-time thread."""

    def __init__(self) -> None:
        super().__init__("admittance_controller")
        self.config: ControllerConfig = declare_config(self, ControllerConfig)
        self.controller = ForceReferenceController(self.config)
        self.loop: PeriodicLoop | None = None
        self._lock = threading.Lock()
        watch_live_parameters(self, lambda: self.config, self._apply_config)
        self._reference = publisher(self, FORCE_REFERENCE)
        self._state = publisher(self, CONTROLLER_STATE)
        self._diagnostics = Diagnostics(self, "exo_control", "admittance_controller")
        subscription(self, ASSISTANCE_COMMAND, self._on_command)
        subscription(self, ACTUATOR_STATE, self._on_state)
        self._cycles = 0
        self._last: ControllerOutput | None = None
        # The loop thread publishes only while this is set, under its lock (see close()).
        self._publishing = True
        self._publish_lock = threading.Lock()
        self.create_timer(1.0, self._publish_diagnostics)
        self.autostart(self.config.autostart)

    # --- lifecycle ------------------------------------------------------------------------

    def on_configure(self, state) -> TransitionCallbackReturn:
        """Validate the current parameters and build the controller."""
        try:
            config = read_config(self, ControllerConfig)
        except ConfigError as exc:
            return self.refuse(str(exc))
        with self._lock:
            self.config = config
            self.controller = ForceReferenceController(config)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        """Start the reference loop."""
        request_realtime_priority(self, self.config.realtime_priority)
        self._publishing = True
        self.loop = PeriodicLoop(1.0 / self.config.rate_hz, self._cycle, name="reference")
        self.loop.start()
        self.get_logger().info(f"force reference at {self.config.rate_hz:g} Hz")
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        """Stop the loop; the actuator releases to slack."""
        self.close()
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        """Nothing is held beyond the loop, which deactivation stopped."""
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        """Stop as on deactivation."""
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def close(self) -> None:
        """Stop the loop thread, then ask the actuator to release once."""
        if self.loop is not None:
            with self._publish_lock:
                self._publishing = False
                if self.context.ok():
                    self._reference.publish(CableForceReference(enabled=False))
            self.loop.stop()
            self.loop = None

    # --- work -----------------------------------------------------------------------------

    def _apply_config(self, config: ControllerConfig) -> None:
        with self._lock:
            self.config = config
            self.controller.update_live(config)

    def _on_command(self, msg: AssistanceCommand) -> None:
        with self._lock:
            self.controller.set_command(
                msg.left_force_n, msg.right_force_n, time.monotonic(),
                assisting=msg.state != AssistanceCommand.STATE_DISABLED and msg.input_ok)

    def _on_state(self, msg: ActuatorState) -> None:
        reading = reading_from_msg(msg)
        with self._lock:
            self.controller.set_measurement(reading, time.monotonic())

    def _cycle(self, now_s: float) -> None:
        with self._lock:
            out = self.controller.step(now_s)
        self._last = out
        stamp = self.get_clock().now().to_msg()
        reference = CableForceReference(
            enabled=out.enabled,
            left_force_n=out.left.force_reference_n, right_force_n=out.right.force_reference_n,
            left_force_rate_n_per_s=out.left.force_rate_n_per_s,
            right_force_rate_n_per_s=out.right.force_rate_n_per_s)
        reference.header.stamp = stamp
        self._cycles += 1
        with self._publish_lock:
            if self._publishing:
                self._reference.publish(reference)
                if self._cycles % max(1, round(self.config.rate_hz
                                               / self.config.state_publish_rate_hz)) == 0:
                    self._publish_state(out, stamp)

    def _publish_state(self, out: ControllerOutput, stamp) -> None:
        state = ControllerState(
            watchdog=int(out.watchdog), enabled=out.enabled, output_scale=out.output_scale,
            left_force_reference_n=out.left.force_reference_n,
            right_force_reference_n=out.right.force_reference_n,
            left_force_error_n=out.left.force_error_n,
            right_force_error_n=out.right.force_error_n,
            loop_period_s=out.period_s)
        state.header.stamp = stamp
        self._state.publish(state)

    def _publish_diagnostics(self) -> None:
        loop, out = self.loop, self._last
        if loop is not None and loop.error is not None:
            self.get_logger().fatal(f"reference loop stopped: {loop.error!r}")
            raise loop.error
        if out is None:
            return
        level = OK if out.watchdog == Watchdog.OK else (
            WARN if out.watchdog == Watchdog.STALE_COMMAND else ERROR)
        stats = loop.stats.summary() if loop is not None else {}
        self._diagnostics.publish(
            level, f"watchdog {out.watchdog.name}",
            {"watchdog": out.watchdog.name, "output_scale": out.output_scale,
             "enabled": out.enabled, "active": loop is not None, **stats},
            hardware_id="controller")


def main(args: list[str] | None = None) -> int:
    """Console entry point ``admittance_controller``."""
    return run_node(AdmittanceControllerNode, args)
