"""The actuator's fast force loop and its fail-to-slack supervisor (no ROS).

This runs in the same process (and thread) as the sensor reads and the motor writes, so a
descheduled ROS graph never opens it. Per side and per cycle (dt, about 1 ms):

    reference  f_ref = slew(clamp(f + df/dt * min(age, extrapolation), 0, max_force), rate)
    admittance M * dv/dt + D * v = f_ref - f_meas        (v: reference cable speed, m/s)
               theta_ref += v / (r / N) * dt             (reference motor angle, rad)
    PD         w = w_ff + Kp * (theta_ref - theta) + Kd * (w_ff - w_meas),  w_ff = v N / r
    slack      while the tension is below release_force_n, v <= slack_take_up_m_s (a slack
               cable reeled in at full speed snaps taut far above the reference)
    limits     |w| <= max_velocity, |dw/dt| <= max_acceleration

The admittance's position reference is the loop's only integrator; anti-windup keeps it within
``max_tracking_error_rad`` of the measured motor angle.

Supervisor. A unidirectional Bowden cable is safe when it is slack, so every fault ends there:

* TRACKING -> RELEASING on any of: no fresh reference for ``reference_timeout_s``, a
  non-finite reference, a reference that asks to disable, measured tension above
  ``max_force_n`` (whatever the reference says), an invalid tension reading, a driver fault
  flag, a fast-loop cycle later than ``max_loop_gap_s`` (the process was descheduled: the
  drive may have switched off and been backdriven, and an admittance resumed from its old
  position reference would snap the cable taut far above the reference), deactivation.
  RELEASING pays cable out at ``release_velocity_rad_s`` until the measured tension is below
  ``release_force_n``, then ``slack_margin_m`` more, then SLACK holds the motor.
  One release pays out ``max_release_m`` at most (all of it without a valid tension reading).
* SLACK that is pulled taut again (the hip moved) releases again.
* Back to TRACKING only once every input has been good for ``recover_after_s``; the reference
  then restarts from zero through the slew limit.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from exo_common.params import spec, validate_fields

from exo_control.actuator import ActuatorReading, Fault, SideReading
from exo_control.assistance import SIDES
from exo_control.limits import clamp, slew

# Share of the motor's velocity and acceleration limits the admittance reference may use; the
# rest is headroom for the PD correction.
REFERENCE_LIMIT_FRACTION = 0.8


class Mode(enum.IntEnum):
    """Loop mode; values match exo_msgs/ActuatorState MODE_*."""

    INACTIVE = 0
    TRACKING = 1
    RELEASING = 2
    SLACK = 3


@dataclass(frozen=True)
class ForceLoopConfig:
    """Fast-loop parameters of the actuator node; ranges reject physically absurd values."""

    rate_hz: float = spec(1000.0, "fast force loop rate (sensor read, control, motor write), Hz",
                          100.0, 5000.0)
    gear_ratio: float = spec(10.0, "motor turns per spool turn (must match the driver)",
                             1.0, 200.0)
    spool_radius_m: float = spec(0.02, "cable spool radius, m (must match the driver)",
                                 0.005, 0.1)
    virtual_mass_kg: float = spec(0.5, "admittance virtual mass, kg", 0.01, 100.0)
    virtual_damping_n_s_per_m: float = spec(60.0, "admittance virtual damping, N s/m",
                                            1.0, 100000.0)
    kp_per_s: float = spec(60.0, "PD position gain, (rad/s)/rad", 0.0, 2000.0)
    kd: float = spec(0.05, "PD velocity-error gain, (rad/s)/(rad/s)", 0.0, 1.0)
    max_velocity_rad_s: float = spec(400.0, "motor velocity limit, rad/s", 1.0, 2000.0)
    max_acceleration_rad_s2: float = spec(20000.0, "motor acceleration limit, rad/s^2",
                                          10.0, 1e6)
    max_force_n: float = spec(200.0, "tension limit: references are clamped to it and a"
                              " measured tension above it releases the cable at once, N",
                              0.0, 500.0, live=True)
    max_force_rate_n_per_s: float = spec(4000.0, "force reference slew-rate limit, N/s",
                                         1.0, 50000.0, live=True)
    reference_extrapolation_s: float = spec(0.01, "longest time the reference is extrapolated"
                                            " with its rate between references, s", 0.0, 0.1)
    slack_take_up_m_s: float = spec(0.15, "fastest reel-in while the cable is slack (tension"
                                    " below release_force_n), m/s: a slack cable taken up at"
                                    " full speed snaps taut", 0.01, 2.0)
    max_tracking_error_rad: float = spec(20.0, "anti-windup bound on reference minus measured"
                                         " motor angle, rad", 0.1, 1000.0)
    reference_timeout_s: float = spec(0.1, "no newer force reference for this long releases"
                                      " the cable, s", 0.005, 1.0)
    max_loop_gap_s: float = spec(0.02, "a fast-loop cycle later than this after the previous"
                                 " one releases the cable: the drive may have timed out and"
                                 " been backdriven meanwhile, so the admittance state no"
                                 " longer matches the cable, s", 0.002, 1.0)
    release_force_n: float = spec(3.0, "a release is complete below this tension, N",
                                  0.5, 50.0)
    release_velocity_rad_s: float = spec(300.0, "motor speed while paying cable out, rad/s",
                                         1.0, 2000.0)
    slack_margin_m: float = spec(0.01, "cable paid out beyond the release point before"
                                 " holding, m", 0.0, 0.1)
    max_release_m: float = spec(0.05, "most cable paid out in one release (all of it when"
                                " the tension cannot be measured), m", 0.001, 0.5)
    recover_after_s: float = spec(0.2, "inputs must be good this long before tracking"
                                  " resumes after a release, s", 0.0, 10.0)

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.release_velocity_rad_s > self.max_velocity_rad_s:
            raise ValueError(f"release_velocity_rad_s={self.release_velocity_rad_s} exceeds"
                             f" max_velocity_rad_s={self.max_velocity_rad_s}")
        for name in ("reference_timeout_s", "max_loop_gap_s"):
            if getattr(self, name) < 2.0 / self.rate_hz:
                raise ValueError(f"{name}={getattr(self, name)} must cover two loop periods"
                                 f" ({2.0 / self.rate_hz} s)")

    @property
    def cable_m_per_motor_rad(self) -> float:
        """Cable travel per motor shaft radian, m/rad."""
        return self.spool_radius_m / self.gear_ratio

    def release_time_s(self, stretch_m: float) -> float:
        """Time to pay out ``stretch_m`` of cable from standstill (ramp up, cruise), s."""
        speed = self.release_velocity_rad_s * self.cable_m_per_motor_rad
        ramp_s = self.release_velocity_rad_s / self.max_acceleration_rad_s2
        return ramp_s + stretch_m / speed

    def fault_to_slack_s(self, stretch_m: float) -> float:
        """Worst case from a fault's onset to released tension, cable stretched ``stretch_m``.

        A stopped reference stream is noticed after ``reference_timeout_s``; the motor first
        stops whatever it was doing, then pays out.
        """
        stop_s = self.max_velocity_rad_s / self.max_acceleration_rad_s2
        return self.reference_timeout_s + stop_s + self.release_time_s(stretch_m) \
            + 2.0 / self.rate_hz


@dataclass(frozen=True)
class ForceReference:
    """Latest force reference as received (monotonic receive time)."""

    enabled: bool
    force_n: tuple[float, float]
    rate_n_per_s: tuple[float, float]
    received_s: float

    def finite(self) -> bool:
        """True when every number in it is finite."""
        return all(math.isfinite(v) for v in (*self.force_n, *self.rate_n_per_s))


@dataclass(frozen=True)
class SideCommand:
    """One side's loop output for one cycle."""

    force_reference_n: float
    velocity_command_rad_s: float


@dataclass(frozen=True)
class LoopOutput:
    """One cycle: mode, the faults seen, what goes to the drives."""

    mode: Mode
    faults: Fault
    drive_enabled: bool
    left: SideCommand
    right: SideCommand


class _Side:
    """Admittance + PD state and release bookkeeping of one side."""

    def __init__(self) -> None:
        self.force_reference_n = 0.0
        self.reference_speed_m_s = 0.0
        self.reference_angle_rad: float | None = None
        self.velocity_command_rad_s = 0.0
        self.begin_release(0.0)

    def reset(self, measured: SideReading) -> None:
        finite = math.isfinite(measured.position_rad)
        self.reference_angle_rad = measured.position_rad if finite else None
        self.reference_speed_m_s = 0.0
        self.force_reference_n = 0.0

    def track(self, cfg: ForceLoopConfig, target_n: float, measured: SideReading,
              dt: float) -> float:
        """Admittance + PD towards ``target_n``; returns the unlimited velocity command."""
        m_per_rad = cfg.cable_m_per_motor_rad
        slack = measured.force_n < cfg.release_force_n
        if self.reference_angle_rad is None:
            self.reset(measured)
        elif slack:
            # A slack cable carries no force for the admittance to integrate against: the
            # position reference restarts at the motor, so the PD never catches up a lead
            # built while the cable was paid out (a stall, a release) at full speed.
            self.reference_angle_rad = measured.position_rad
        self.force_reference_n = clamp(
            slew(self.force_reference_n, target_n, cfg.max_force_rate_n_per_s * dt),
            0.0, cfg.max_force_n)
        error = self.force_reference_n - measured.force_n
        accel = (error - cfg.virtual_damping_n_s_per_m * self.reference_speed_m_s) \
            / cfg.virtual_mass_kg
        # The reference never asks for more than the motor can do: a reference that outruns
        # the acceleration limit overshoots and limit-cycles against the stiff cable.
        max_accel = REFERENCE_LIMIT_FRACTION * cfg.max_acceleration_rad_s2 * m_per_rad
        speed = self.reference_speed_m_s + clamp(accel, -max_accel, max_accel) * dt
        max_speed = REFERENCE_LIMIT_FRACTION * cfg.max_velocity_rad_s * m_per_rad
        max_reel_in = min(max_speed, cfg.slack_take_up_m_s) if slack else max_speed
        speed = clamp(speed, -max_speed, max_reel_in)
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

    def begin_release(self, now_s: float) -> None:
        self.release_started_s = now_s
        self.release_start_rad: float | None = None
        self.release_target_rad: float | None = None

    def released(self, cfg: ForceLoopConfig, measured: SideReading, sensor_ok: bool,
                 now_s: float) -> bool:
        """True once this side has paid out enough cable to be slack."""
        m_per_rad = cfg.cable_m_per_motor_rad
        position = measured.position_rad
        # Time to pay out max_release_m: all a release may take.
        timed_out = now_s - self.release_started_s >= cfg.release_time_s(cfg.max_release_m)
        if not math.isfinite(position):  # no encoder: pay out for that whole time
            return timed_out
        if self.release_start_rad is None:
            self.release_start_rad = position
        if self.release_target_rad is None and sensor_ok and measured.force_n < cfg.release_force_n:
            self.release_target_rad = position - cfg.slack_margin_m / m_per_rad
        floor = self.release_start_rad - cfg.max_release_m / m_per_rad
        target = floor if self.release_target_rad is None else max(self.release_target_rad, floor)
        # A drive that cannot move (a driver fault switched it off) has released all it can
        # once the tension is gone and a whole release's time has passed.
        slack_now = not sensor_ok or measured.force_n < cfg.release_force_n
        return position <= target or (timed_out and slack_now)

    def limit_velocity(self, cfg: ForceLoopConfig, target: float, dt: float) -> float:
        target = clamp(target, -cfg.max_velocity_rad_s, cfg.max_velocity_rad_s)
        self.velocity_command_rad_s = clamp(
            slew(self.velocity_command_rad_s, target, cfg.max_acceleration_rad_s2 * dt),
            -cfg.max_velocity_rad_s, cfg.max_velocity_rad_s)
        return self.velocity_command_rad_s


def reading_faults(reading: ActuatorReading, max_force_n: float) -> Fault:
    """Faults visible in a sensor reading: driver flags, invalid values, over-force."""
    faults = Fault.NONE
    for side in (reading.left, reading.right):
        faults |= Fault(side.fault_flags) & ~Fault.COMMAND_TIMEOUT
        if not all(math.isfinite(v) for v in (side.force_n, side.position_rad,
                                              side.velocity_rad_s)):
            faults |= Fault.SENSOR
        elif side.force_n > max_force_n:
            faults |= Fault.OVER_FORCE
    return faults


class ForceLoop:
    """Both sides' fast loops and the supervisor; call ``step`` once per loop period."""

    def __init__(self, config: ForceLoopConfig) -> None:
        self.config = config
        self.mode = Mode.INACTIVE
        self._sides = {side: _Side() for side in SIDES}
        self._reference: ForceReference | None = None
        self._active = False
        self._last_step_s: float | None = None
        self._bad_since_s: float | None = None  # last cycle an input was bad

    def update_live(self, config: ForceLoopConfig) -> None:
        """Swap in a configuration that differs only in fields marked live (limits)."""
        self.config = config

    def set_reference(self, reference: ForceReference) -> None:
        """Latest reference from the controller."""
        self._reference = reference

    def activate(self) -> None:
        """Allow tracking (it starts once the inputs are good)."""
        self._active = True

    def deactivate(self) -> None:
        """Release to slack and stay there until activated again."""
        self._active = False

    @property
    def slack(self) -> bool:
        """True when no side is tracking or releasing (the cables are released)."""
        return self.mode in (Mode.SLACK, Mode.INACTIVE)

    def input_faults(self, now_s: float, reading: ActuatorReading) -> Fault:
        """Every reason not to track at ``now_s``."""
        cfg = self.config
        faults = reading_faults(reading, cfg.max_force_n)
        ref = self._reference
        if ref is None or now_s - ref.received_s > cfg.reference_timeout_s:
            faults |= Fault.COMMAND_TIMEOUT
        elif not ref.finite():
            faults |= Fault.INVALID_REFERENCE
        return faults

    def _target_n(self, index: int, now_s: float) -> float:
        ref = self._reference
        age = clamp(now_s - ref.received_s, 0.0, self.config.reference_extrapolation_s)
        return clamp(ref.force_n[index] + ref.rate_n_per_s[index] * age,
                     0.0, self.config.max_force_n)

    def _next_mode(self, now_s: float, faults: Fault, reading: ActuatorReading) -> Mode:
        wants_tracking = (self._active and not faults and self._reference is not None
                          and self._reference.enabled)
        if not wants_tracking:
            self._bad_since_s = now_s
        if self.mode == Mode.INACTIVE and not self._active:
            return Mode.INACTIVE
        if self.mode == Mode.TRACKING:
            return Mode.TRACKING if wants_tracking else self._begin_release(now_s)
        good_for = now_s - self._bad_since_s if self._bad_since_s is not None else math.inf
        if wants_tracking and good_for >= self.config.recover_after_s:
            for side, measured in zip(self._sides.values(), (reading.left, reading.right),
                                      strict=True):
                side.reset(measured)
            return Mode.TRACKING
        if self.mode == Mode.SLACK:
            # The hip moved and pulled the held cable taut again: release once more.
            taut = any(math.isfinite(s.force_n) and s.force_n > self.config.release_force_n
                       for s in (reading.left, reading.right))
            return self._begin_release(now_s) if taut else Mode.SLACK
        if self.mode == Mode.INACTIVE:
            return Mode.SLACK
        return Mode.RELEASING

    def _begin_release(self, now_s: float) -> Mode:
        for side in self._sides.values():
            side.begin_release(now_s)
        return Mode.RELEASING

    def step(self, now_s: float, reading: ActuatorReading) -> LoopOutput:
        """One cycle at monotonic time ``now_s`` on a fresh sensor ``reading``."""
        cfg = self.config
        nominal = 1.0 / cfg.rate_hz
        gap = nominal if self._last_step_s is None else now_s - self._last_step_s
        dt = clamp(gap, 0.0, 5.0 * nominal)
        self._last_step_s = now_s
        faults = self.input_faults(now_s, reading)
        if gap > cfg.max_loop_gap_s:
            faults |= Fault.LOOP_STALL
        self.mode = self._next_mode(now_s, faults, reading)
        sensor_ok = not faults & Fault.SENSOR
        released = []
        out = {}
        for index, (name, side) in enumerate(self._sides.items()):
            measured = getattr(reading, name)
            if self.mode == Mode.TRACKING:
                target = side.track(cfg, self._target_n(index, now_s), measured, dt)
            elif self.mode == Mode.RELEASING:
                side.force_reference_n = 0.0
                done = side.released(cfg, measured, sensor_ok, now_s)
                released.append(done)
                target = 0.0 if done else -cfg.release_velocity_rad_s
            else:
                side.force_reference_n = 0.0
                target = 0.0
            out[name] = SideCommand(side.force_reference_n,
                                    side.limit_velocity(cfg, target, dt))
        if self.mode == Mode.RELEASING and all(released):
            self.mode = Mode.SLACK
        drive_enabled = self.mode != Mode.INACTIVE
        return LoopOutput(self.mode, faults, drive_enabled, out["left"], out["right"])
