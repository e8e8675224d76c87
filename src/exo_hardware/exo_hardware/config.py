"""Hardware parameters, read from the same YAML file the actuator node gets (no ROS).

The actuator node builds a driver from its entry point without arguments, so a hardware
driver reads its own parameters: the file named by ``EXO_HARDWARE_CONFIG`` (assist.launch.py
sets it to the file it passes to the node). The file is an ordinary ROS parameter file for the
actuator node; its ``hw:`` section (parameters ``hw.*``, which the node does not declare) holds
the hardware, and the fast loop's own fields are read from it too, so the driver can refuse a
loop whose force limit the force measurement cannot guarantee.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from exo_common.params import config_from_mapping, field_specs, spec, validate_fields
from exo_control.force_loop import ForceLoopConfig

CONFIG_ENV = "EXO_HARDWARE_CONFIG"
HW_SECTION = "hw"


class HardwareError(ValueError):
    """Hardware that cannot be configured or opened.

    A ValueError, so the actuator node refuses configure with this one-line reason.
    """


@dataclass(frozen=True)
class HardwareConfig:
    """Transmission, force measurement, limits and device addresses of both sides."""

    gear_ratio: float = spec(9.0, "motor turns per spool turn (opensourceleg's motor_position"
                             " side to the spool)", 1.0, 200.0)
    spool_radius_m: float = spec(0.03, "cable spool radius, m", 0.005, 0.1)
    left_reel_in_sign: int = spec(1, "+1 if positive motor velocity reels the left cable in,"
                                  " else -1 (mirrored motors differ)", -1, 1)
    right_reel_in_sign: int = spec(-1, "+1 if positive motor velocity reels the right cable"
                                   " in, else -1", -1, 1)
    force_source: str = spec("estimate", "cable tension: 'loadcell' (ADC channel per side) or"
                             " 'estimate' (motor current x torque constant x gear ratio /"
                             " spool radius)", choices=("estimate", "loadcell"))
    torque_constant_nm_per_a: float = spec(0.115, "motor torque constant at the motor side,"
                                           " N m/A", 0.001, 10.0)
    force_uncertainty_fraction: float = spec(0.35, "worst-case relative error of the tension"
                                             " measurement (estimate: torque constant, gear"
                                             " friction, inertia; load cell: calibration)",
                                             0.0, 1.0)
    fault_force_n: float = spec(300.0, "tension the cable, suit and wearer must never see, N;"
                                " OVER_FORCE when the measurement's upper bound exceeds it",
                                1.0, 5000.0)
    fault_velocity_rad_s: float = spec(160.0, "motor speed above which OVER_VELOCITY is"
                                       " flagged, rad/s", 1.0, 10000.0)
    fault_temperature_c: float = spec(70.0, "motor temperature above which DRIVER is"
                                      " flagged, deg C", 20.0, 150.0)
    stale_after_s: float = spec(0.05, "no fresh motor status for this long flags SENSOR, s",
                                0.002, 1.0)
    offline: bool = spec(False, "opensourceleg offline mode: no hardware is opened (testing)")
    # T-Motor AK servo mode over CAN
    can_interface: str = spec("socketcan", "python-can interface ('socketcan' on a Jetson)")
    can_channel: str = spec("can0", "CAN channel (`ip link` name)")
    can_bitrate: int = spec(1000000, "CAN bit rate, bit/s, for interfaces that set it"
                            " (socketcan: `ip link` sets it)", 10000, 8000000)
    motor_type: str = spec("AK80-9", "T-Motor model known to opensourceleg",
                           choices=("AK80-9", "AK10-9"))
    left_motor_id: int = spec(1, "CAN id of the left motor", 0, 255)
    right_motor_id: int = spec(2, "CAN id of the right motor", 0, 255)
    # Dephy actuators over USB serial
    left_port: str = spec("/dev/ttyACM0", "serial port of the left Dephy actuator")
    right_port: str = spec("/dev/ttyACM1", "serial port of the right Dephy actuator")
    firmware_version: str = spec("7.2.0", "Dephy firmware version (flexsea)")
    baud_rate: int = spec(230400, "Dephy serial baud rate", 9600, 4000000)
    velocity_gain_nm_s_per_rad: float = spec(0.01, "in-process velocity loop gain (drives"
                                             " without a velocity mode), N m s/rad",
                                             1e-5, 10.0)
    velocity_integral_nm_per_rad: float = spec(0.5, "in-process velocity loop integral gain,"
                                               " N m/rad", 0.0, 1000.0)
    max_motor_torque_nm: float = spec(0.5, "in-process velocity loop torque limit, N m",
                                      0.01, 20.0)
    # load cell amplifier: opensourceleg's ADS131M0x ADC on SPI
    adc_spi_bus: int = spec(0, "SPI bus of the load-cell ADC", 0, 10)
    adc_spi_cs: int = spec(0, "SPI chip select of the load-cell ADC", 0, 10)
    left_adc_channel: int = spec(0, "ADC channel of the left load cell", 0, 7)
    right_adc_channel: int = spec(1, "ADC channel of the right load cell", 0, 7)
    loadcell_n_per_mv: float = spec(10.0, "load-cell sensitivity, N per mV (after the"
                                    " zero taken at start-up, cable slack)", 1e-3, 1e5)

    def __post_init__(self) -> None:
        validate_fields(self)
        for name in ("left_reel_in_sign", "right_reel_in_sign"):
            if getattr(self, name) not in (-1, 1):
                raise ValueError(f"{name}={getattr(self, name)}: must be 1 or -1")

    def cable_force_bound_n(self, measured_n: float) -> float:
        """Largest tension consistent with a measurement, N."""
        return measured_n * (1.0 + self.force_uncertainty_fraction)


def check_limits(hw: HardwareConfig, loop: ForceLoopConfig) -> None:
    """Raise HardwareError when the fast loop cannot be held within the hardware's limits."""
    if (hw.gear_ratio, hw.spool_radius_m) != (loop.gear_ratio, loop.spool_radius_m):
        raise HardwareError(f"fast loop gear_ratio/spool_radius_m {loop.gear_ratio:g}/"
                            f"{loop.spool_radius_m:g} differ from hw. {hw.gear_ratio:g}/"
                            f"{hw.spool_radius_m:g}")
    bound = hw.cable_force_bound_n(loop.max_force_n)
    if bound > hw.fault_force_n:
        raise HardwareError(
            f"max_force_n={loop.max_force_n:g} N with the {hw.force_source} measurement's"
            f" {hw.force_uncertainty_fraction:.0%} uncertainty may be {bound:.0f} N, above"
            f" hw.fault_force_n={hw.fault_force_n:g} N: lower max_force_n to"
            f" {hw.fault_force_n / (1.0 + hw.force_uncertainty_fraction):.0f} N or less")
    if loop.max_velocity_rad_s > hw.fault_velocity_rad_s:
        raise HardwareError(f"max_velocity_rad_s={loop.max_velocity_rad_s:g} exceeds"
                            f" hw.fault_velocity_rad_s={hw.fault_velocity_rad_s:g}")


def node_parameters(path: Path) -> dict:
    """The ``ros__parameters`` mapping of the (single) node section in a parameter file."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise HardwareError(f"cannot read hardware parameter file {path}: {exc}") from exc
    sections = [v["ros__parameters"] for v in (data or {}).values()
                if isinstance(v, dict) and isinstance(v.get("ros__parameters"), dict)]
    if len(sections) != 1:
        raise HardwareError(f"{path}: expected one node section with ros__parameters,"
                            f" found {len(sections)}")
    return sections[0]


def load_hardware_config(path: str | Path | None = None) -> tuple[HardwareConfig,
                                                                  ForceLoopConfig]:
    """Hardware and fast-loop configuration from ``path`` (default: ``$EXO_HARDWARE_CONFIG``)."""
    path = path or os.environ.get(CONFIG_ENV)
    if not path:
        raise HardwareError(f"no hardware parameter file: set {CONFIG_ENV} to the YAML given"
                            " to the actuator node (assist.launch.py does this)")
    params = node_parameters(Path(path))
    loop_fields = {k: v for k, v in params.items() if k in field_specs(ForceLoopConfig)}
    try:
        hw = config_from_mapping(HardwareConfig, dict(params.get(HW_SECTION) or {}))
        loop = config_from_mapping(ForceLoopConfig, loop_fields)
    except (TypeError, ValueError) as exc:
        raise HardwareError(f"{path}: {exc}") from exc
    check_limits(hw, loop)
    return hw, loop

