"""Actuator boundary and a simulated Bowden-cable actuator (no ROS).

Hardware boundary: the ``actuator`` node runs the fast force loop (exo_control.force_loop) in
its own thread, in the same process as one :class:`ActuatorDriver`: each cycle it calls
``update`` (read the sensors, return an :class:`ActuatorReading`), computes, and calls
``command`` (motor shaft velocity per side; ``enabled`` False switches the drives off, zero
torque, so the cable backdrives them towards slack). ``close`` switches the drives off for good.
A driver reports problems through the fault flags (:class:`Fault`, the same bits as
exo_msgs/ActuatorState) instead of raising, and states its transmission in ``geometry`` so the
node can refuse a loop configured for other hardware. Drivers are found by name in the
``exo_control.actuator_drivers`` entry-point group, so a hardware package adds
``my_driver = my_pkg.driver:MyDriver`` to its setup.py and runs the node with
``-p driver:=my_driver``. A drive that times out on its own (no command from the host for a
while) must switch to zero torque as well, never hold or brake a loaded cable.

Simulated plant, per side (motor side values unless named otherwise):

    J * dw/dt = tau_drive - tau_coulomb*sign(w) - b*w - F * r / N
    tau_drive = clamp(K_v * e + K_i * integral(e), +-tau_max)  (the drive's PI velocity loop,
                                                                e = w_cmd - w; drive off or
                                                                command timed out: 0)
    spool angle s: within +-backlash/2 of the gear output theta/N; cable tension pulls it
    to the pay-out side of the gap
    stretch  = r * s + sign * arm * (q_hip - q_fit) - slack     (sign +1 for an extension cable:
                                                                 hip flexion lengthens its path)
    F        = max(0, k * stretch + c * d(stretch)/dt) while stretch > 0, else 0

so the wearer's hip is a moving load: flexing the hip stretches an extension cable unless the
motor pays cable out. q_fit is the posture the suit was fitted in: the first hip angle received
(0 until then), so a stream that starts mid-stride does not yank the cable in one sample;
a joint state that arrives more than ``max_hip_sample_age_s`` after its stamp (a backlog the
host delivers at once after a stall) is history and moves nothing.
A hip angle outside +-``max_hip_angle_rad`` is a broken sensor, not a posture: it is ignored
and flagged SENSOR. When the host process was descheduled, ``update`` integrates the whole gap
(up to ``max_gap_s``) with the drive holding its last command until its own timeout and then
switching off, as a real drive would.
"""

from __future__ import annotations

import abc
import enum
import importlib.metadata
import math
from dataclasses import dataclass

import numpy as np
from exo_common.params import spec, validate_fields

from exo_control.limits import clamp

DRIVER_ENTRY_POINT_GROUP = "exo_control.actuator_drivers"


class Fault(enum.IntFlag):
    """Actuator fault bits; values match exo_msgs/ActuatorState FAULT_*."""

    NONE = 0
    OVER_FORCE = 1
    OVER_VELOCITY = 2
    SENSOR = 4
    COMMAND_TIMEOUT = 8
    DRIVER = 16
    INVALID_REFERENCE = 32
    LOOP_STALL = 64


@dataclass(frozen=True)
class SideReading:
    """Measured state of one side's actuator (SI units)."""

    force_n: float
    position_rad: float
    velocity_rad_s: float
    fault_flags: int = 0


@dataclass(frozen=True)
class ActuatorReading:
    """Measured state of both sides."""

    left: SideReading
    right: SideReading


class ActuatorDriver(abc.ABC):
    """What the actuator node needs from a driver, simulated or hardware."""

    @abc.abstractmethod
    def command(self, left_velocity_rad_s: float, right_velocity_rad_s: float, enabled: bool,
                now_s: float) -> None:
        """Set motor shaft velocities (rad/s); ``enabled`` False switches the drives off."""

    @abc.abstractmethod
    def update(self, now_s: float) -> ActuatorReading:
        """Advance to monotonic time ``now_s`` (read the hardware) and return the measurement."""

    def set_hip_angles(self, left_rad: float, right_rad: float,  # noqa: B027 - optional
                       left_rad_s: float = 0.0, right_rad_s: float = 0.0,
                       age_s: float = 0.0) -> None:
        """Wearer's hip angles (flexion +), measured ``age_s`` ago; for simulations only."""

    @abc.abstractmethod
    def geometry(self) -> tuple[float, float]:
        """(gear ratio, spool radius in m) of the hardware, as configured for the driver."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Switch the drives off (zero torque) and release the hardware."""


@dataclass(frozen=True)
class SimulatedActuatorConfig:
    """Plant parameters of the simulated Bowden-cable actuator."""

    motor_inertia_kg_m2: float = spec(3e-5, "motor + gearbox inertia at the motor shaft, kg m^2",
                                      1e-7, 1e-2)
    gear_ratio: float = spec(10.0, "motor turns per spool turn", 1.0, 200.0)
    spool_radius_m: float = spec(0.02, "cable spool radius, m", 0.005, 0.1)
    cable_stiffness_n_per_m: float = spec(8000.0, "series stiffness of cable and suit, N/m",
                                          100.0, 200000.0)
    cable_damping_n_s_per_m: float = spec(50.0, "cable damping while taut, N s/m", 0.0, 5000.0)
    slack_m: float = spec(0.005, "cable slack at zero motor and hip angle, m", 0.0, 0.1)
    backlash_rad: float = spec(0.02, "gearbox backlash at the spool, rad", 0.0, 0.5)
    coulomb_friction_nm: float = spec(0.01, "Coulomb friction at the motor shaft, N m", 0.0, 1.0)
    viscous_friction_nm_s_per_rad: float = spec(1e-5, "viscous friction at the motor, N m s/rad",
                                                0.0, 0.01)
    hip_moment_arm_m: float = spec(0.1, "cable moment arm about the hip, m", 0.02, 0.3)
    direction: str = spec("extension", "direction the cable assists",
                          choices=("extension", "flexion"))
    velocity_loop_gain_nm_s_per_rad: float = spec(0.02, "drive velocity-loop gain, N m s/rad",
                                                  1e-5, 10.0)
    velocity_loop_integral_nm_per_rad: float = spec(2.0, "drive velocity-loop integral gain,"
                                                    " N m/rad", 0.0, 1000.0)
    max_motor_torque_nm: float = spec(0.6, "drive torque limit at the motor, N m", 0.01, 20.0)
    fault_force_n: float = spec(400.0, "tension above which OVER_FORCE is flagged, N",
                                1.0, 5000.0)
    fault_velocity_rad_s: float = spec(600.0, "speed above which OVER_VELOCITY is flagged, rad/s",
                                       1.0, 10000.0)
    command_timeout_s: float = spec(0.02, "the drive switches off (zero torque) and flags"
                                    " COMMAND_TIMEOUT after this long without a command, s",
                                    0.002, 1.0)
    max_hip_angle_rad: float = spec(2.5, "hip angles beyond +- this are a sensor fault, rad",
                                    0.5, 3.2)
    max_hip_sample_age_s: float = spec(
        0.05, "joint states older than this when they arrive are history, not where the hip is"
        " now: a backlog delivered at once does not sweep the simulated hip through it, s",
        0.005, 1.0)
    hip_jump_rad: float = spec(
        0.05, "a joint state further than this from where the simulated hip is (joint states"
        " that paused and resumed) is caught up with at hip_catch_up_rad_s, not jumped to, rad",
        0.005, 1.0)
    hip_catch_up_rad_s: float = spec(
        4.0, "speed at which the simulated hip closes such a gap on top of its own motion,"
        " rad/s", 0.1, 100.0)
    max_gap_s: float = spec(0.5, "longest stall of the host process integrated at once, s",
                            0.01, 5.0)
    force_noise_n: float = spec(0.0, "standard deviation of force-sensor noise, N", 0.0, 20.0)
    seed: int = spec(0, "noise generator seed", 0, 2**31 - 1)
    substep_s: float = spec(2.5e-4, "integration step, s", 1e-5, 1e-3)

    def __post_init__(self) -> None:
        validate_fields(self)

    @property
    def cable_m_per_motor_rad(self) -> float:
        """Cable travel per motor shaft radian, m/rad."""
        return self.spool_radius_m / self.gear_ratio


@dataclass(frozen=True)
class ActuatorNodeConfig:
    """Parameters of the actuator node itself (any driver); the fast loop's are ForceLoopConfig."""

    driver: str = spec("simulated", "actuator driver: 'simulated' or an entry point name in"
                       " exo_control.actuator_drivers")
    state_publish_rate_hz: float = spec(100.0, "/actuator/state and /actuator/motor_command"
                                        " publish rate, Hz", 1.0, 1000.0)
    autostart: bool = spec(True, "configure and activate at start-up (else wait for lifecycle"
                           " transitions)")
    realtime_priority: int = spec(50, "SCHED_FIFO priority of the node's threads, so the fast"
                                  " loop keeps its rate on a busy machine; 0 = normal"
                                  " scheduling. Without permission (CAP_SYS_NICE, an rtprio"
                                  " limit) it warns and runs normally", 0, 98)
    joint_names: list = spec(["left_hip_joint", "right_hip_joint"],
                             "JointState names of the left and right hip")
    inject_fault_flags: int = spec(0, "fault bits forced on the simulated actuator (testing)",
                                   0, 31, live=True)

    def __post_init__(self) -> None:
        validate_fields(self)
        if len(self.joint_names) != 2 or not all(self.joint_names):
            raise ValueError(f"joint_names={self.joint_names!r}: need two names (left, right)")


class _SimulatedSide:
    """State and dynamics of one motor, spool and cable."""

    def __init__(self, config: SimulatedActuatorConfig) -> None:
        self.cfg = config
        self.motor_rad = 0.0
        self.motor_rad_s = 0.0
        self.spool_rad = 0.0
        self.stretch_m = -config.slack_m
        self.force_n = 0.0
        self.drive_integral_nm = 0.0
        self.fitted_hip_rad = 0.0

    def _stretch(self, spool_rad: float, hip_rad: float) -> float:
        cfg = self.cfg
        geometry = cfg.hip_moment_arm_m * (hip_rad - self.fitted_hip_rad)
        if cfg.direction == "flexion":
            geometry = -geometry
        return cfg.spool_radius_m * spool_rad + geometry - cfg.slack_m

    def _update_spool(self, hip_rad: float) -> None:
        """Place the spool in the backlash gap: free when slack, pulled to pay-out when taut."""
        cfg = self.cfg
        gear = self.motor_rad / cfg.gear_ratio
        half = 0.5 * cfg.backlash_rad
        spool = clamp(self.spool_rad, gear - half, gear + half)
        if self._stretch(spool, hip_rad) > 0.0:
            spool_at_zero = spool - self._stretch(spool, hip_rad) / cfg.spool_radius_m
            spool = max(gear - half, spool_at_zero)
        self.spool_rad = spool

    def substep(self, velocity_command: float | None, hip_rad: float, dt: float) -> None:
        """Advance by ``dt``; ``velocity_command`` None: drive off (zero torque)."""
        cfg = self.cfg
        self._update_spool(hip_rad)
        stretch = self._stretch(self.spool_rad, hip_rad)
        stretch_rate = (stretch - self.stretch_m) / dt
        self.stretch_m = stretch
        if stretch > 0.0:
            self.force_n = max(0.0, cfg.cable_stiffness_n_per_m * stretch
                               + cfg.cable_damping_n_s_per_m * stretch_rate)
        else:
            self.force_n = 0.0
        if velocity_command is None:
            self.drive_integral_nm = 0.0
            drive = 0.0
        else:
            error = velocity_command - self.motor_rad_s
            self.drive_integral_nm = clamp(  # the integral never winds past the torque limit
                self.drive_integral_nm + cfg.velocity_loop_integral_nm_per_rad * error * dt,
                -cfg.max_motor_torque_nm, cfg.max_motor_torque_nm)
            drive = clamp(cfg.velocity_loop_gain_nm_s_per_rad * error + self.drive_integral_nm,
                          -cfg.max_motor_torque_nm, cfg.max_motor_torque_nm)
        load = self.force_n * cfg.cable_m_per_motor_rad
        net = drive - load - cfg.viscous_friction_nm_s_per_rad * self.motor_rad_s
        w = self.motor_rad_s
        if w == 0.0 and abs(net) <= cfg.coulomb_friction_nm:
            return  # stiction holds the motor
        friction = cfg.coulomb_friction_nm * math.copysign(1.0, w if w != 0.0 else net)
        w_new = w + (net - friction) * dt / cfg.motor_inertia_kg_m2
        if w != 0.0 and math.copysign(1.0, w_new) != math.copysign(1.0, w):
            w_new = 0.0  # friction stops the motor; it does not reverse it
        self.motor_rad_s = w_new
        self.motor_rad += w_new * dt


class SimulatedBowdenActuator(ActuatorDriver):
    """Two simulated Bowden-cable actuators driven by velocity commands."""

    def __init__(self, config: SimulatedActuatorConfig | None = None) -> None:
        self.config = config or SimulatedActuatorConfig()
        self._sides = {"left": _SimulatedSide(self.config), "right": _SimulatedSide(self.config)}
        self._rng = np.random.default_rng(self.config.seed)
        self._now_s: float | None = None
        self._command = (0.0, 0.0)
        self._enabled = False
        self._command_s: float | None = None
        self._hip: dict[str, tuple[float, float]] = {}  # angle rad, velocity rad/s
        self._hip_set_s = 0.0
        self._hip_gap: dict[str, float] = {}  # rad the simulated hip still lags its samples by
        self._hip_fault = False
        self.stale_hip_samples = 0  # joint states that arrived too late to place the hip
        self.injected_faults = Fault.NONE

    def geometry(self) -> tuple[float, float]:
        """The simulated transmission."""
        return self.config.gear_ratio, self.config.spool_radius_m

    def command(self, left_velocity_rad_s: float, right_velocity_rad_s: float, enabled: bool,
                now_s: float) -> None:
        """Take a velocity command; a non-finite one switches both drives off."""
        finite = math.isfinite(left_velocity_rad_s) and math.isfinite(right_velocity_rad_s)
        self._command = (left_velocity_rad_s, right_velocity_rad_s) if finite else (0.0, 0.0)
        self._enabled = bool(enabled) and finite
        self._command_s = now_s

    def set_hip_angles(self, left_rad: float, right_rad: float, left_rad_s: float = 0.0,
                       right_rad_s: float = 0.0, age_s: float = 0.0) -> None:
        """Move the cable anchors; a non-finite or absurd angle keeps the previous one.

        A sample older than ``max_hip_sample_age_s`` is ignored: the host received it late
        (a backlog queued while it was busy), and applying a whole backlog within milliseconds
        would move the hip through its path at once and snap the cable, which a body cannot do.
        """
        if age_s > self.config.max_hip_sample_age_s:
            self.stale_hip_samples += 1
            return
        limit = self.config.max_hip_angle_rad
        self._hip_fault = any(abs(a) > limit for a in (left_rad, right_rad) if math.isfinite(a))
        if self._hip_fault:
            return
        now_s = self._now_s or 0.0
        for side, angle, rate in (("left", left_rad, left_rad_s),
                                  ("right", right_rad, right_rad_s)):
            if math.isfinite(angle):
                if side not in self._hip:
                    self._sides[side].fitted_hip_rad = angle
                gap = self._hip_angle(side, now_s) - angle
                self._hip_gap[side] = gap if abs(gap) > self.config.hip_jump_rad else 0.0
                self._hip[side] = (angle, rate if math.isfinite(rate) else 0.0)
        self._hip_set_s = now_s

    def _hip_angle(self, side: str, now_s: float) -> float:
        """Hip angle extrapolated with its velocity for up to 50 ms after the last sample.

        After a pause in the joint states the samples resume far from where the simulated hip
        is; a body covers that path in time, so the hip closes the gap at
        ``hip_catch_up_rad_s`` instead of jumping (a jump snaps the cable in one step).
        """
        angle, rate = self._hip.get(side, (self._sides[side].fitted_hip_rad, 0.0))
        since = now_s - self._hip_set_s
        gap = self._hip_gap.get(side, 0.0)
        left = max(0.0, abs(gap) - self.config.hip_catch_up_rad_s * max(0.0, since))
        return angle + rate * clamp(since, 0.0, 0.05) + math.copysign(left, gap)

    def _drive_on(self, t: float) -> bool:
        """Whether the drive is driving at time ``t``: enabled and commanded recently."""
        return (self._enabled and self._command_s is not None
                and t - self._command_s <= self.config.command_timeout_s
                and not self.injected_faults & Fault.DRIVER)

    def update(self, now_s: float) -> ActuatorReading:
        """Integrate the plant up to ``now_s`` in substeps and read the sensors."""
        cfg = self.config
        if self._now_s is None:
            self._now_s = now_s
        elapsed = clamp(now_s - self._now_s, 0.0, cfg.max_gap_s)
        steps = max(1, math.ceil(elapsed / cfg.substep_s)) if elapsed > 0.0 else 0
        start = now_s - elapsed
        for i in range(steps):
            t = start + (i + 1) * elapsed / steps
            drive_on = self._drive_on(t)
            for index, (side, sim) in enumerate(self._sides.items()):
                sim.substep(self._command[index] if drive_on else None,
                            self._hip_angle(side, t), elapsed / steps)
        self._now_s = now_s
        timed_out = self._command_s is None or now_s - self._command_s > cfg.command_timeout_s
        return ActuatorReading(*(self._read(sim, timed_out) for sim in self._sides.values()))

    def _read(self, sim: _SimulatedSide, timed_out: bool) -> SideReading:
        cfg = self.config
        flags = self.injected_faults
        if timed_out:
            flags |= Fault.COMMAND_TIMEOUT
        if self._hip_fault:
            flags |= Fault.SENSOR
        if sim.force_n > cfg.fault_force_n:
            flags |= Fault.OVER_FORCE
        if abs(sim.motor_rad_s) > cfg.fault_velocity_rad_s:
            flags |= Fault.OVER_VELOCITY
        force = sim.force_n
        if cfg.force_noise_n > 0.0:
            force = max(0.0, force + float(self._rng.normal(0.0, cfg.force_noise_n)))
        if self.injected_faults & Fault.SENSOR:
            force = math.nan  # an injected sensor fault reads as NaN, as a broken load cell would
        return SideReading(force, sim.motor_rad, sim.motor_rad_s, int(flags))


def load_driver(name: str, sim_config: SimulatedActuatorConfig | None = None) -> ActuatorDriver:
    """Driver by name: "simulated", or an entry point in ``exo_control.actuator_drivers``."""
    if name == "simulated":
        return SimulatedBowdenActuator(sim_config)
    found = [ep for ep in importlib.metadata.entry_points(group=DRIVER_ENTRY_POINT_GROUP)
             if ep.name == name]
    if not found:
        available = sorted({"simulated"} | {ep.name for ep in importlib.metadata.entry_points(
            group=DRIVER_ENTRY_POINT_GROUP)})
        raise ValueError(f"unknown actuator driver {name!r}; available: {', '.join(available)}")
    driver = found[0].load()()
    if not isinstance(driver, ActuatorDriver):
        raise TypeError(f"driver {name!r} does not implement exo_control.actuator.ActuatorDriver")
    return driver
