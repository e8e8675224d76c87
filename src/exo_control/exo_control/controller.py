"""Admittance outer loop + PD inner loop turning cable-force references into motor velocities.

No ROS here. Per side and per control cycle (dt):

    force reference  f_ref = slew(clamp(watchdog_scale * f_cmd, 0, max_force), max_force_rate)
    admittance       M * dv/dt + D * v = f_ref - f_meas       (v: reference cable speed, m/s)
                     theta_ref += v / (r / N) * dt            (reference motor angle, rad)
    PD inner loop    w = w_ff + Kp * (theta_ref - theta) + Kd * (w_ff - w_meas),  w_ff = v N / r
    limits           |w| <= max_velocity, |dw/dt| <= max_acceleration

The admittance's position reference integrates the force error, so it is the loop's only
integrator; anti-windup keeps ``theta_ref`` within ``max_tracking_error_rad`` of the measured
motor angle and stops the reference speed from pushing further outside, so a blocked or
saturated motor never winds up a reference that would later jerk the cable.

Watchdog (checked every cycle, feedback problems first):

* stale actuator state, NaN measurement, actuator fault flags -> the feedback cannot be trusted:
  the velocity command ramps to zero at the acceleration limit at once (then the motor is
  disabled, i.e. braked), and the force reference fades to zero;
* stale or NaN assistance command -> the last good command is held while the force reference
  fades to zero over ``watchdog_fade_s`` under closed-loop control (the cable is unloaded
  gently); once the measured force is below ``release_force_n`` (or ``watchdog_fade_s`` later
  at most) the motor velocity ramps to zero and the motor is disabled;
* when every input is good again the scale fades back in over ``watchdog_recover_s``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from exo_control.actuator import ActuatorReading, SideReading
from exo_control.assistance import SIDES
from exo_control.limits import SmoothFade, clamp, slew
from exo_control.params import spec, validate_fields

# Share of the motor's velocity and acceleration limits the admittance reference may use; the
# rest is headroom for the PD correction.
REFERENCE_LIMIT_FRACTION = 0.8


class Watchdog(enum.IntEnum):
    """Watchdog verdict; values match exo_msgs/ControllerState WATCHDOG_*."""

    OK = 0
    STALE_COMMAND = 1
    STALE_ACTUATOR = 2
    INVALID_INPUT = 3
    ACTUATOR_FAULT = 4


@dataclass(frozen=True)
class ControllerConfig:
    """Parameters of the low-level controller; ranges reject physically absurd values."""

    rate_hz: float = spec(1000.0, "control loop rate, Hz", 50.0, 5000.0)
    gear_ratio: float = spec(10.0, "motor turns per spool turn", 1.0, 200.0)
    spool_radius_m: float = spec(0.02, "cable spool radius, m", 0.005, 0.1)
    virtual_mass_kg: float = spec(0.5, "admittance virtual mass, kg", 0.01, 100.0)
    virtual_damping_n_s_per_m: float = spec(60.0, "admittance virtual damping, N s/m",
                                            1.0, 100000.0)
    kp_per_s: float = spec(60.0, "inner-loop position gain, (rad/s)/rad", 0.0, 2000.0)
    kd: float = spec(0.05, "inner-loop velocity-error gain, (rad/s)/(rad/s)", 0.0, 1.0)
    max_velocity_rad_s: float = spec(400.0, "motor velocity limit, rad/s", 1.0, 2000.0)
    max_acceleration_rad_s2: float = spec(20000.0, "motor acceleration limit, rad/s^2",
                                          10.0, 1e6)
    max_force_n: float = spec(200.0, "force reference limit, N", 0.0, 500.0, live=True)
    max_force_rate_n_per_s: float = spec(4000.0, "force reference slew-rate limit, N/s",
                                         1.0, 50000.0, live=True)
    max_tracking_error_rad: float = spec(20.0, "anti-windup bound on reference minus measured"
                                         " motor angle, rad", 0.1, 1000.0)
    command_timeout_s: float = spec(0.1, "assistance command older than this is stale, s",
                                    0.005, 1.0)
    state_timeout_s: float = spec(0.02, "actuator state older than this is stale, s",
                                  0.002, 1.0)
    watchdog_fade_s: float = spec(0.1, "force-reference fade-out after a watchdog trip, s",
                                  0.005, 2.0)
    watchdog_recover_s: float = spec(0.5, "force-reference fade-in once inputs are good, s",
                                     0.01, 10.0)
    release_force_n: float = spec(2.0, "after a watchdog fade the motor stops once the cable"
                                  " force is below this, N", 0.0, 50.0)
    state_publish_rate_hz: float = spec(100.0, "ControllerState publish rate, Hz", 1.0, 1000.0)

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.state_timeout_s < 2.0 / self.rate_hz:
            raise ValueError(f"state_timeout_s={self.state_timeout_s} must cover two control"
                             f" periods ({2.0 / self.rate_hz} s)")

    @property
    def cable_m_per_motor_rad(self) -> float:
        """Cable travel per motor shaft radian, m/rad."""
        return self.spool_radius_m / self.gear_ratio

    def stop_time_s(self) -> float:
        """Longest time to ramp the motor from full speed to zero at the acceleration limit."""
        return self.max_velocity_rad_s / self.max_acceleration_rad_s2

    def unload_time_after_stale_command_s(self) -> float:
        """Worst case from the last good command to zero force reference."""
        return (self.command_timeout_s + self.watchdog_fade_s
                + self.max_force_n / self.max_force_rate_n_per_s + 2.0 / self.rate_hz)

    def stop_time_after_stale_command_s(self) -> float:
        """Worst case from the last good command to zero motor velocity (unload, settle, stop)."""
        return self.unload_time_after_stale_command_s() + self.watchdog_fade_s + self.stop_time_s()

    def stop_time_after_feedback_loss_s(self) -> float:
        """Worst case from the last good actuator state to zero motor velocity."""
        return self.state_timeout_s + self.stop_time_s() + 2.0 / self.rate_hz


@dataclass(frozen=True)
class SideOutput:
    """One side's controller output for one cycle."""

    force_reference_n: float
    force_error_n: float
    velocity_command_rad_s: float


@dataclass(frozen=True)
class ControllerOutput:
    """One cycle's motor command and internal state (fields as in exo_msgs/ControllerState)."""

    watchdog: Watchdog
    output_scale: float
    motor_enabled: bool
    left: SideOutput
    right: SideOutput
    dt_s: float


class _SideLoop:
    """Admittance + PD state of one side."""

    def __init__(self) -> None:
        self.force_command_n = 0.0  # last finite command
        self.force_reference_n = 0.0
        self.reference_speed_m_s = 0.0
        self.reference_angle_rad: float | None = None
        self.velocity_command_rad_s = 0.0

    def reset_reference(self, measured_angle_rad: float) -> None:
        self.reference_angle_rad = measured_angle_rad if math.isfinite(measured_angle_rad) else None
        self.reference_speed_m_s = 0.0

    def track(self, cfg: ControllerConfig, measured: SideReading, dt: float) -> float:
        """Admittance + PD; returns the unlimited velocity command, rad/s."""
        m_per_rad = cfg.cable_m_per_motor_rad
        if self.reference_angle_rad is None:
            self.reset_reference(measured.position_rad)
        error = self.force_reference_n - measured.force_n
        accel = (error - cfg.virtual_damping_n_s_per_m * self.reference_speed_m_s) \
            / cfg.virtual_mass_kg
        # The reference never asks for more than the motor can do: a reference that outruns
        # the acceleration limit overshoots and limit-cycles against the stiff cable.
        max_accel = REFERENCE_LIMIT_FRACTION * cfg.max_acceleration_rad_s2 * m_per_rad
        speed = self.reference_speed_m_s + clamp(accel, -max_accel, max_accel) * dt
        max_speed = REFERENCE_LIMIT_FRACTION * cfg.max_velocity_rad_s * m_per_rad
        speed = clamp(speed, -max_speed, max_speed)
        angle = self.reference_angle_rad + speed / m_per_rad * dt
        low = measured.position_rad - cfg.max_tracking_error_rad
        high = measured.position_rad + cfg.max_tracking_error_rad
        if angle > high or angle < low:  # anti-windup: hold the reference at the bound
            angle = clamp(angle, low, high)
            if (angle >= high and speed > 0.0) or (angle <= low and speed < 0.0):
                speed = 0.0
        self.reference_angle_rad = angle
        self.reference_speed_m_s = speed
        feedforward = speed / m_per_rad
        return (feedforward + cfg.kp_per_s * (angle - measured.position_rad)
                + cfg.kd * (feedforward - measured.velocity_rad_s))

    def limit_velocity(self, cfg: ControllerConfig, target: float, dt: float) -> float:
        target = clamp(target, -cfg.max_velocity_rad_s, cfg.max_velocity_rad_s)
        self.velocity_command_rad_s = clamp(
            slew(self.velocity_command_rad_s, target, cfg.max_acceleration_rad_s2 * dt),
            -cfg.max_velocity_rad_s, cfg.max_velocity_rad_s)
        return self.velocity_command_rad_s


def _reading_is_finite(reading: ActuatorReading) -> bool:
    return all(math.isfinite(v) for side in (reading.left, reading.right)
               for v in (side.force_n, side.position_rad, side.velocity_rad_s))


class AdmittanceController:
    """Both sides' loops plus the watchdog; call ``step`` once per control period."""

    def __init__(self, config: ControllerConfig) -> None:
        self.config = config
        self._loops = {side: _SideLoop() for side in SIDES}
        self._scale = SmoothFade(config.watchdog_recover_s, config.watchdog_fade_s)
        self._command: tuple[float, float, float] | None = None  # left N, right N, received s
        self._reading: tuple[ActuatorReading, float] | None = None
        self._last_step_s: float | None = None
        self._unloaded_since_s: float | None = None

    def update_live(self, config: ControllerConfig) -> None:
        """Swap in a configuration that differs only in fields marked live (limits)."""
        self.config = config

    def set_command(self, left_force_n: float, right_force_n: float, received_s: float) -> None:
        """Latest desired cable forces (N) from the assistance profile."""
        self._command = (left_force_n, right_force_n, received_s)

    def set_measurement(self, reading: ActuatorReading, received_s: float) -> None:
        """Latest actuator state."""
        self._reading = (reading, received_s)

    def watchdog(self, now_s: float) -> Watchdog:
        """Verdict on the inputs at ``now_s``; feedback problems take precedence."""
        cfg = self.config
        if self._reading is None or now_s - self._reading[1] > cfg.state_timeout_s:
            return Watchdog.STALE_ACTUATOR
        reading = self._reading[0]
        if not _reading_is_finite(reading):
            return Watchdog.INVALID_INPUT
        if reading.left.fault_flags or reading.right.fault_flags:
            return Watchdog.ACTUATOR_FAULT
        if self._command is None or now_s - self._command[2] > cfg.command_timeout_s:
            return Watchdog.STALE_COMMAND
        if not (math.isfinite(self._command[0]) and math.isfinite(self._command[1])):
            return Watchdog.INVALID_INPUT
        return Watchdog.OK

    def _feedback_ok(self, verdict: Watchdog) -> bool:
        return verdict in (Watchdog.OK, Watchdog.STALE_COMMAND) or (
            verdict == Watchdog.INVALID_INPUT and _reading_is_finite(self._reading[0]))

    def _released(self, verdict: Watchdog, scale: float, now_s: float) -> bool:
        """True once a watchdog fade has finished and the cables are unloaded (or waited out)."""
        references_zero = all(loop.force_reference_n == 0.0 for loop in self._loops.values())
        if verdict == Watchdog.OK or scale > 0.0 or not references_zero:
            self._unloaded_since_s = None
            return False
        if self._unloaded_since_s is None:
            self._unloaded_since_s = now_s
        reading = self._reading[0] if self._reading else None
        slack = reading is not None and all(abs(side.force_n) < self.config.release_force_n
                                            for side in (reading.left, reading.right))
        return slack or now_s - self._unloaded_since_s >= self.config.watchdog_fade_s

    def step(self, now_s: float) -> ControllerOutput:
        """Run one control cycle at monotonic time ``now_s`` (seconds)."""
        cfg = self.config
        nominal = 1.0 / cfg.rate_hz
        dt = nominal if self._last_step_s is None else clamp(now_s - self._last_step_s,
                                                              0.2 * nominal, 5.0 * nominal)
        self._last_step_s = now_s
        verdict = self.watchdog(now_s)
        scale = self._scale.step(verdict == Watchdog.OK, dt)
        feedback_ok = self._feedback_ok(verdict)
        released = self._released(verdict, scale, now_s)
        outputs = {}
        for index, (side, loop) in enumerate(self._loops.items()):
            if self._command is not None and math.isfinite(self._command[index]):
                loop.force_command_n = self._command[index]
            target = clamp(scale * loop.force_command_n, 0.0, cfg.max_force_n)
            loop.force_reference_n = clamp(
                slew(loop.force_reference_n, target, cfg.max_force_rate_n_per_s * dt),
                0.0, cfg.max_force_n)
            measured = getattr(self._reading[0], side) if self._reading else None
            if feedback_ok and not released:
                velocity = loop.track(cfg, measured, dt)
            else:
                velocity = 0.0
                if measured is not None:
                    loop.reset_reference(measured.position_rad)
            velocity = loop.limit_velocity(cfg, velocity, dt)
            force_error = (loop.force_reference_n - measured.force_n) if measured else math.nan
            outputs[side] = SideOutput(loop.force_reference_n, force_error, velocity)
        moving = any(out.velocity_command_rad_s != 0.0 for out in outputs.values())
        enabled = verdict == Watchdog.OK or moving or (feedback_ok and scale > 0.0)
        return ControllerOutput(verdict, scale, enabled, outputs["left"], outputs["right"], dt)
