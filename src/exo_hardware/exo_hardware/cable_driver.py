"""Bowden-cable actuator driver over two motor ports, whatever the drive (no ROS, no library).

:class:`CableActuatorDriver` is the :class:`exo_control.actuator.ActuatorDriver` the actuator
node runs; the per-drive code is a :class:`MotorPort` (opensourceleg actuators in
exo_hardware.osl_ports). It maps, per side with ``sign`` = ``*_reel_in_sign``:

    reported motor angle / velocity = sign * drive's motor angle / velocity
    drive velocity command          = sign * commanded velocity    (positive reels in)
    cable tension (estimate)        = sign * current * K_t * N / r  (or the load cell)

and turns every problem into fault flags: a drive fault code or an exception from the library
(DRIVER), a motor hotter than ``fault_temperature_c`` (DRIVER), no fresh status for
``stale_after_s`` or an unreadable tension (SENSOR), a speed above ``fault_velocity_rad_s``
(OVER_VELOCITY), a tension whose upper bound (measurement x (1 + uncertainty)) exceeds
``fault_force_n`` (OVER_FORCE). While any flag is up, and whenever the loop disables the
drives, both drives are switched to zero torque, so the cable backdrives them to slack; the
fast loop's supervisor releases on the same flags and resumes only once they have cleared.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from exo_control.actuator import ActuatorDriver, ActuatorReading, Fault, SideReading
from exo_control.limits import clamp

from exo_hardware.config import HardwareConfig

SIDES = ("left", "right")


@dataclass(frozen=True)
class MotorSample:
    """One drive's status in the drive's own sign convention (SI units)."""

    position_rad: float
    velocity_rad_s: float
    current_a: float
    temperature_c: float
    drive_fault: bool
    fresh: bool  # a new status arrived since the previous read


class MotorPort(Protocol):
    """What the driver needs from one drive; any method may raise."""

    def start(self) -> None:
        """Open the drive, in zero torque."""

    def read(self, now_s: float) -> MotorSample:
        """Latest status."""

    def drive_velocity(self, velocity_rad_s: float, now_s: float) -> None:
        """Track a motor velocity (the drive's own loop, or one run here)."""

    def zero_torque(self) -> None:
        """Stop driving: zero torque, the motor is backdrivable."""

    def stop(self) -> None:
        """Zero torque and release the device."""


class ForceSensor(Protocol):
    """Cable tension of both sides, N (NaN when unreadable); may raise."""

    def start(self) -> None:
        """Open and zero (cable slack)."""

    def read(self) -> tuple[float, float]:
        """(left, right) tension, N."""

    def stop(self) -> None:
        """Release the device."""


class VelocityLoop:
    """PI velocity loop with a torque limit, for drives driven in current mode."""

    def __init__(self, gain_nm_s_per_rad: float, integral_nm_per_rad: float,
                 max_torque_nm: float) -> None:
        self.gain, self.integral_gain, self.max_torque = (gain_nm_s_per_rad,
                                                          integral_nm_per_rad, max_torque_nm)
        self.reset()

    def reset(self) -> None:
        """Forget the integral (the drive was off)."""
        self.integral_nm = 0.0
        self.last_s: float | None = None

    def torque_nm(self, target_rad_s: float, measured_rad_s: float, now_s: float) -> float:
        """Motor torque for this cycle; the integral never winds past the torque limit."""
        dt = 0.0 if self.last_s is None else clamp(now_s - self.last_s, 0.0, 0.01)
        self.last_s = now_s
        error = target_rad_s - measured_rad_s
        self.integral_nm = clamp(self.integral_nm + self.integral_gain * error * dt,
                                 -self.max_torque, self.max_torque)
        return clamp(self.gain * error + self.integral_nm, -self.max_torque, self.max_torque)


class CableActuatorDriver(ActuatorDriver):
    """Two cable drives behind the actuator boundary; never raises from update or command."""

    def __init__(self, config: HardwareConfig, left: MotorPort, right: MotorPort,
                 force_sensor: ForceSensor | None = None,
                 on_close: Callable[[], None] | None = None) -> None:
        if (config.force_source == "loadcell") != (force_sensor is not None):
            raise ValueError("force_source 'loadcell' needs a force sensor, 'estimate' none")
        self.config = config
        self.ports = {"left": left, "right": right}
        self.signs = {"left": config.left_reel_in_sign, "right": config.right_reel_in_sign}
        self.force_sensor = force_sensor
        self.on_close = on_close  # releases what the ports share (a CAN bus)
        self.faults = Fault.NONE  # of the last update; any of them keeps both drives off
        self.driving = False
        self._fresh_s = {side: None for side in SIDES}
        self._command_error = False

    def start(self, now_s: float) -> None:
        """Open the drives (zero torque) and the force sensor; raises what the library raises."""
        for port in self.ports.values():
            port.start()
            port.zero_torque()
        if self.force_sensor is not None:
            self.force_sensor.start()
        self._fresh_s = {side: now_s for side in SIDES}

    def geometry(self) -> tuple[float, float]:
        """The configured transmission."""
        return self.config.gear_ratio, self.config.spool_radius_m

    def estimated_force_n(self, side: str, current_a: float) -> float:
        """Cable tension from the motor current (quasi-static: no inertia, no friction), N."""
        cfg = self.config
        return (self.signs[side] * current_a * cfg.torque_constant_nm_per_a * cfg.gear_ratio
                / cfg.spool_radius_m)

    def _read_forces(self) -> tuple[float, float] | None:
        if self.force_sensor is None:
            return None
        try:
            return self.force_sensor.read()
        except Exception:  # a library error is a SENSOR fault, never a crash
            return (math.nan, math.nan)

    def _read_side(self, side: str, now_s: float, force_n: float | None) -> SideReading:
        cfg, sign = self.config, self.signs[side]
        flags = Fault.NONE
        try:
            sample = self.ports[side].read(now_s)
        except Exception:  # any library error is a DRIVER fault
            return SideReading(math.nan, math.nan, math.nan, int(Fault.DRIVER))
        if sample.fresh:
            self._fresh_s[side] = now_s
        last = self._fresh_s[side]
        if last is None or now_s - last > cfg.stale_after_s:
            flags |= Fault.SENSOR
        if sample.drive_fault or sample.temperature_c > cfg.fault_temperature_c:
            flags |= Fault.DRIVER
        if force_n is None:
            force_n = self.estimated_force_n(side, sample.current_a)
        values = (force_n, sample.position_rad, sample.velocity_rad_s)
        if not all(math.isfinite(v) for v in values):
            flags |= Fault.SENSOR
        else:
            if abs(sample.velocity_rad_s) > cfg.fault_velocity_rad_s:
                flags |= Fault.OVER_VELOCITY
            if cfg.cable_force_bound_n(force_n) > cfg.fault_force_n:
                flags |= Fault.OVER_FORCE
        return SideReading(force_n, sign * sample.position_rad, sign * sample.velocity_rad_s,
                           int(flags))

    def update(self, now_s: float) -> ActuatorReading:
        """Read both drives (and the load cells) and flag what is wrong."""
        forces = self._read_forces()
        readings = [self._read_side(side, now_s, None if forces is None else forces[i])
                    for i, side in enumerate(SIDES)]
        faults = Fault.NONE
        for reading in readings:
            faults |= Fault(reading.fault_flags)
        if self._command_error:
            faults |= Fault.DRIVER
            self._command_error = False
            readings = [SideReading(r.force_n, r.position_rad, r.velocity_rad_s,
                                    r.fault_flags | int(Fault.DRIVER)) for r in readings]
        self.faults = faults
        return ActuatorReading(*readings)

    def command(self, left_velocity_rad_s: float, right_velocity_rad_s: float, enabled: bool,
                now_s: float) -> None:
        """Drive the velocities, or zero torque when disabled, faulted or given non-finite."""
        velocities = (left_velocity_rad_s, right_velocity_rad_s)
        drive = (bool(enabled) and not self.faults
                 and all(math.isfinite(v) for v in velocities))
        try:
            if drive:
                for side, velocity in zip(SIDES, velocities, strict=True):
                    self.ports[side].drive_velocity(self.signs[side] * velocity, now_s)
            else:
                self._zero_torque()
            self.driving = drive
        except Exception:  # flagged DRIVER on the next update
            self._command_error = True
            self._zero_torque()

    def _zero_torque(self) -> None:
        self.driving = False
        for port in self.ports.values():
            try:
                port.zero_torque()
            except Exception:  # keep trying the other side
                self._command_error = True

    def close(self) -> None:
        """Zero torque on both drives, then release them and the force sensor."""
        self._zero_torque()
        for device in (*self.ports.values(), self.force_sensor):
            if device is None:
                continue
            try:
                device.stop()
            except Exception:  # closing must reach every device
                self._command_error = True
        if self.on_close is not None:
            try:
                self.on_close()
            except Exception:  # the drives are already off
                self._command_error = True
