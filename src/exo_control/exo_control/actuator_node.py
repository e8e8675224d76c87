"""ROS 2 lifecycle node ``simulated_actuator``: force reference -> fast loop -> driver -> state.

Hosts one exo_control.actuator.ActuatorDriver (the simulated Bowden-cable actuator unless
``driver`` names another) and the fast force loop (exo_control.force_loop) in one PeriodicLoop
thread at ``rate_hz``: read the sensors, run admittance + PD and the fail-to-slack supervisor,
write the motors. ROS only carries the slow side: /actuator/force_reference in (latest value),
/actuator/state and /actuator/motor_command (monitoring) out at ``state_publish_rate_hz``.
The wearer's hip angles from /joint_states move the simulated cable anchors; hardware drivers
ignore them.

Lifecycle: configure validates the parameters, loads the driver and refuses a fast loop whose
gear ratio or spool radius differ from the driver's; the loop then runs with the drives off.
Activate lets it track; deactivate, shutdown and SIGINT release the cables to slack (bounded
wait) before the drives are switched off.
"""

from __future__ import annotations

import math
import threading
import time

from exo_common.diagnostics import ERROR, OK, Diagnostics
from exo_common.node_params import declare_config, read_config, watch_live_parameters
from exo_common.node_runner import ManagedNode, request_realtime_priority, run_node
from exo_common.params import ConfigError
from exo_common.topics import (
    ACTUATOR_STATE,
    FORCE_REFERENCE,
    JOINT_STATES,
    MOTOR_COMMAND,
    publisher,
    stamp_s,
    subscription,
)
from rclpy.lifecycle import TransitionCallbackReturn
from sensor_msgs.msg import JointState

from exo_control.actuator import (
    ActuatorDriver,
    ActuatorNodeConfig,
    ActuatorReading,
    Fault,
    SimulatedActuatorConfig,
    load_driver,
)
from exo_control.force_loop import ForceLoop, ForceLoopConfig, ForceReference, LoopOutput
from exo_control.loop_timing import PeriodicLoop
from exo_msgs.msg import ActuatorState, CableForceReference, MotorCommand

SIM_PREFIX = "sim."


def check_geometry(config: ForceLoopConfig, driver: ActuatorDriver, name: str) -> None:
    """Raise ValueError when the fast loop's transmission is not the driver's."""
    gear_ratio, spool_radius_m = driver.geometry()
    for field, loop_value, driver_value in (("gear_ratio", config.gear_ratio, gear_ratio),
                                            ("spool_radius_m", config.spool_radius_m,
                                             spool_radius_m)):
        if not math.isclose(loop_value, driver_value, rel_tol=1e-6):
            raise ValueError(f"{field}={loop_value:g} does not match the {name!r} driver's"
                             f" {driver_value:g}")


class ActuatorNode(ManagedNode):
    """The fast force loop beside one actuator driver, simulated or hardware."""

    def __init__(self) -> None:
        super().__init__("simulated_actuator")
        self.config: ActuatorNodeConfig = declare_config(self, ActuatorNodeConfig)
        self.loop_config: ForceLoopConfig = declare_config(self, ForceLoopConfig)
        if self.config.driver == "simulated":
            declare_config(self, SimulatedActuatorConfig, SIM_PREFIX)
        self.driver: ActuatorDriver | None = None
        self.force_loop: ForceLoop | None = None
        self.loop: PeriodicLoop | None = None
        self._lock = threading.Lock()
        watch_live_parameters(self, lambda: self.config, self._apply_node_config)
        watch_live_parameters(self, lambda: self.loop_config, self._apply_loop_config)
        self._state = publisher(self, ACTUATOR_STATE)
        self._motor = publisher(self, MOTOR_COMMAND)
        self._diagnostics = Diagnostics(self, "exo_control", "actuator")
        subscription(self, FORCE_REFERENCE, self._on_reference)
        subscription(self, JOINT_STATES, self._on_joint_states)
        self._last: tuple[ActuatorReading, LoopOutput] | None = None
        self._cycles = 0
        # The loop thread publishes only while this is set, under its lock: close() clears it
        # before the node is destroyed, so a late cycle never touches a destroyed publisher.
        self._publishing = True
        self._publish_lock = threading.Lock()
        self.create_timer(1.0, self._publish_diagnostics)
        self.autostart(self.config.autostart)

    # --- lifecycle ------------------------------------------------------------------------

    def on_configure(self, state) -> TransitionCallbackReturn:
        """Validate, load the driver, cross-check it and start the loop with the drives off."""
        try:
            config = read_config(self, ActuatorNodeConfig)
            loop_config = read_config(self, ForceLoopConfig)
            sim_config = (read_config(self, SimulatedActuatorConfig, SIM_PREFIX)
                          if config.driver == "simulated" else None)
            driver = load_driver(config.driver, sim_config)
            check_geometry(loop_config, driver, config.driver)
        except (ConfigError, ValueError, TypeError) as exc:
            return self.refuse(f"{self.get_name()}: {exc}")
        with self._lock:
            self.config, self.loop_config = config, loop_config
            self.driver, self.force_loop = driver, ForceLoop(loop_config)
            self._apply_node_config(config)
        request_realtime_priority(self, config.realtime_priority)
        self._publishing = True  # again, after a cleanup
        self.loop = PeriodicLoop(1.0 / loop_config.rate_hz, self._cycle, name="force_loop")
        self.loop.start()
        self.get_logger().info(f"actuator driver '{config.driver}', force loop at"
                               f" {loop_config.rate_hz:g} Hz")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        """Let the loop track references (once they are good)."""
        with self._lock:
            self.force_loop.activate()
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        """Release to slack and hold there."""
        self._release()
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        """Stop the loop and switch the drives off."""
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        """Release, then stop."""
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def _release(self, timeout_s: float = 1.0) -> bool:
        """Deactivate the loop and wait (bounded) until it reports the cables slack."""
        if self.force_loop is None or self.loop is None:
            return True
        with self._lock:
            self.force_loop.deactivate()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.loop.error is None:
            if self.force_loop.slack:
                return True
            time.sleep(0.005)
        return self.force_loop.slack

    def close(self) -> None:
        """Release to slack, stop the loop thread, switch the drives off."""
        if self.loop is None:
            return
        self._release()
        with self._publish_lock:
            self._publishing = False
        self.loop.stop()
        self.loop = None
        with self._lock:
            self.driver.close()

    # --- work -----------------------------------------------------------------------------

    def _apply_node_config(self, config: ActuatorNodeConfig) -> None:
        self.config = config
        if hasattr(self.driver, "injected_faults"):
            self.driver.injected_faults = Fault(config.inject_fault_flags)

    def _apply_loop_config(self, config: ForceLoopConfig) -> None:
        with self._lock:
            self.loop_config = config
            if self.force_loop is not None:
                self.force_loop.update_live(config)

    def _on_reference(self, msg: CableForceReference) -> None:
        reference = ForceReference(msg.enabled, (msg.left_force_n, msg.right_force_n),
                                   (msg.left_force_rate_n_per_s, msg.right_force_rate_n_per_s),
                                   time.monotonic())
        with self._lock:
            if self.force_loop is not None:
                self.force_loop.set_reference(reference)

    def _on_joint_states(self, msg: JointState) -> None:
        angles, rates = [], []
        for name in self.config.joint_names:
            if name not in msg.name:
                return
            i = msg.name.index(name)
            angles.append(msg.position[i] if i < len(msg.position) else math.nan)
            rates.append(msg.velocity[i] if i < len(msg.velocity) else 0.0)
        stamp = stamp_s(msg.header.stamp)  # 0: unstamped, taken as current
        age_s = self.get_clock().now().nanoseconds * 1e-9 - stamp if stamp > 0.0 else 0.0
        with self._lock:
            if self.driver is not None:
                self.driver.set_hip_angles(angles[0], angles[1], rates[0], rates[1], age_s)

    def _cycle(self, now_s: float) -> None:
        with self._lock:
            reading = self.driver.update(now_s)
            out = self.force_loop.step(now_s, reading)
            self.driver.command(out.left.velocity_command_rad_s,
                                out.right.velocity_command_rad_s, out.drive_enabled, now_s)
        self._last = (reading, out)
        self._cycles += 1
        if self._cycles % max(1, round(self.loop_config.rate_hz
                                       / self.config.state_publish_rate_hz)) == 0:
            with self._publish_lock:
                if self._publishing:
                    self._publish(reading, out)

    def _publish(self, reading: ActuatorReading, out: LoopOutput) -> None:
        stamp = self.get_clock().now().to_msg()
        state = ActuatorState(mode=int(out.mode))
        state.header.stamp = stamp
        for side in ("left", "right"):
            measured, command = getattr(reading, side), getattr(out, side)
            setattr(state, f"{side}_cable_force_n", measured.force_n)
            setattr(state, f"{side}_force_reference_n", command.force_reference_n)
            setattr(state, f"{side}_motor_position_rad", measured.position_rad)
            setattr(state, f"{side}_motor_velocity_rad_s", measured.velocity_rad_s)
            # What makes the loop release; a drive that timed out during a stall of this
            # process is not a fault of the actuator (it shows in the loop statistics).
            setattr(state, f"{side}_fault_flags", int(out.faults))
        self._state.publish(state)
        motor = MotorCommand(enabled=out.drive_enabled,
                             left_velocity_rad_s=out.left.velocity_command_rad_s,
                             right_velocity_rad_s=out.right.velocity_command_rad_s)
        motor.header.stamp = stamp
        self._motor.publish(motor)

    def _publish_diagnostics(self) -> None:
        loop, last = self.loop, self._last
        if loop is not None and loop.error is not None:
            self.get_logger().fatal(f"force loop stopped: {loop.error!r}")
            raise loop.error
        if last is None:
            return
        reading, out = last
        self._diagnostics.publish(
            ERROR if out.faults else OK,
            f"{out.mode.name}, faults: {out.faults!r}" if out.faults else out.mode.name,
            {"mode": out.mode.name, "left_cable_force_n": reading.left.force_n,
             "right_cable_force_n": reading.right.force_n, "faults": int(out.faults),
             **({"stale_hip_samples": self.driver.stale_hip_samples}
                if hasattr(self.driver, "stale_hip_samples") else {}),
             **(loop.stats.summary() if loop is not None else {})},
            hardware_id=self.config.driver)


def main(args: list[str] | None = None) -> int:
    """Console entry point ``simulated_actuator``."""
    return run_node(ActuatorNode, args)
