"""Live hip angles from actuator encoders or thigh IMUs, with zero-posture calibration (no ROS).

Encoders: the actuator node's motor angle (``/actuator/state``, positive = cable reeled in)
follows the hip only while the cable is taut; then its length is constant and

    hip angle change = -/+ (r / N) * motor angle change / moment arm

(minus for an extension cable: reeling in extends the hip; plus for a flexion cable). So this
source needs a transmission that keeps a small pretension on the cable; with a slack cable
(fault, release, drives off) it does not see the hip, and the IMU source is the right one.
IMUs: hip flexion is the thigh's pitch change (pelvis assumed upright), times a mounting sign.

Both are relative to the posture held during start-up calibration: the wearer stands still
for ``calibration_s``; a window in which either side moves more than ``still_range_rad``
(peak to peak) is refused with the reason and calibration starts over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from exo_common.params import spec, validate_fields


class NotStill(ValueError):
    """The wearer moved during a calibration window (the message says how much)."""


@dataclass(frozen=True)
class HipAngleConfig:
    """Parameters of the ``hip_angle_publisher`` node."""

    source: str = spec("encoders", "'encoders' (actuator motor angles on /actuator/state) or"
                       " 'imu' (thigh IMUs through opensourceleg)", choices=("encoders", "imu"))
    rate_hz: float = spec(200.0, "IMU read and publish rate, Hz (encoders: every"
                          " /actuator/state message)", 1.0, 1000.0)
    calibration_s: float = spec(2.0, "stand-still time for the zero posture at start-up, s",
                                0.2, 30.0)
    still_range_rad: float = spec(0.02, "largest peak-to-peak hip motion accepted as standing"
                                  " still, rad", 0.001, 0.5)
    max_hip_angle_rad: float = spec(2.5, "a hip angle beyond +- this is a sensor fault and"
                                    " is not published, rad", 0.5, 3.2)
    joint_names: list = spec(["left_hip_joint", "right_hip_joint"],
                             "JointState names of the left and right hip")
    gear_ratio: float = spec(9.0, "encoders: motor turns per spool turn", 1.0, 200.0)
    spool_radius_m: float = spec(0.03, "encoders: cable spool radius, m", 0.005, 0.1)
    hip_moment_arm_m: float = spec(0.1, "encoders: cable moment arm about the hip, m",
                                   0.02, 0.3)
    direction: str = spec("extension", "encoders: direction the cable assists",
                          choices=("extension", "flexion"))
    imu_type: str = spec("lord_microstrain", "imu: opensourceleg IMU class",
                         choices=("lord_microstrain",))
    left_imu_port: str = spec("/dev/ttyUSB0", "imu: serial port of the left thigh IMU")
    right_imu_port: str = spec("/dev/ttyUSB1", "imu: serial port of the right thigh IMU")
    left_imu_sign: int = spec(1, "imu: +1 if the left IMU's pitch grows with hip flexion,"
                              " else -1", -1, 1)
    right_imu_sign: int = spec(-1, "imu: +1 if the right IMU's pitch grows with hip flexion,"
                               " else -1", -1, 1)
    offline: bool = spec(False, "imu: opensourceleg offline mode (no device, testing)")

    def __post_init__(self) -> None:
        validate_fields(self)
        if len(self.joint_names) != 2 or not all(self.joint_names):
            raise ValueError(f"joint_names={self.joint_names!r}: need two names (left, right)")
        for name in ("left_imu_sign", "right_imu_sign"):
            if getattr(self, name) not in (-1, 1):
                raise ValueError(f"{name}={getattr(self, name)}: must be 1 or -1")

    def scale(self) -> tuple[float, float]:
        """Hip radians per raw unit (motor rad or IMU pitch rad), left and right."""
        if self.source == "imu":
            return float(self.left_imu_sign), float(self.right_imu_sign)
        per_motor_rad = self.spool_radius_m / (self.gear_ratio * self.hip_moment_arm_m)
        sign = -1.0 if self.direction == "extension" else 1.0
        return sign * per_motor_rad, sign * per_motor_rad


class ZeroPostureCalibration:
    """Collects raw samples for ``duration_s`` and accepts them only if both hips were still."""

    def __init__(self, duration_s: float, still_range_rad: float,
                 scale: tuple[float, float]) -> None:
        self.duration_s, self.still_range_rad, self.scale = duration_s, still_range_rad, scale
        self._start_s: float | None = None
        self._samples: list[tuple[float, float]] = []

    def add(self, now_s: float, raw: tuple[float, float]) -> tuple[float, float] | None:
        """Add a sample; the zero (raw units) once a still window is complete, else None.

        Raises NotStill when a complete window moved too much (the next sample starts a new
        one) or when a sample is not finite.
        """
        if not all(math.isfinite(v) for v in raw):
            self._start_s, self._samples = None, []
            raise NotStill(f"no valid reading to calibrate on ({raw[0]}, {raw[1]})")
        if self._start_s is None:
            self._start_s = now_s
        self._samples.append(raw)
        if now_s - self._start_s < self.duration_s:
            return None
        samples, self._start_s, self._samples = self._samples, None, []
        for index, side in enumerate(("left", "right")):
            values = [s[index] for s in samples]
            moved = (max(values) - min(values)) * abs(self.scale[index])
            if moved > self.still_range_rad:
                raise NotStill(f"{side} hip moved {moved:.3f} rad (> {self.still_range_rad:g})"
                               f" during the {self.duration_s:g} s zero-posture calibration:"
                               " stand still; calibrating again")
        return tuple(sum(s[i] for s in samples) / len(samples) for i in (0, 1))


@dataclass(frozen=True)
class HipSample:
    """Both hips' angles (flexion +, rad) and velocities (rad/s)."""

    position_rad: tuple[float, float]
    velocity_rad_s: tuple[float, float]


class HipAngleTracker:
    """Raw readings -> calibrated hip angles and finite-difference velocities."""

    def __init__(self, config: HipAngleConfig) -> None:
        self.config = config
        self.scale = config.scale()
        self.calibration = ZeroPostureCalibration(config.calibration_s, config.still_range_rad,
                                                  self.scale)
        self.zero: tuple[float, float] | None = None
        self._last: tuple[float, tuple[float, float]] | None = None

    @property
    def calibrated(self) -> bool:
        """True once the zero posture is known."""
        return self.zero is not None

    def update(self, now_s: float, raw: tuple[float, float]) -> HipSample | None:
        """A sample to publish, or None (calibrating, or an invalid reading).

        Raises NotStill while calibrating when the wearer moved.
        """
        if self.zero is None:
            self.zero = self.calibration.add(now_s, raw)
            return None
        angles = tuple(k * (v - z) for k, v, z in zip(self.scale, raw, self.zero, strict=True))
        if not all(math.isfinite(a) and abs(a) <= self.config.max_hip_angle_rad
                   for a in angles):
            self._last = None
            return None
        velocity = (0.0, 0.0)
        if self._last is not None and now_s > self._last[0]:
            dt = now_s - self._last[0]
            velocity = tuple((a - b) / dt for a, b in zip(angles, self._last[1], strict=True))
        self._last = (now_s, angles)
        return HipSample(angles, velocity)
