"""opensourceleg actuators and load cells as motor ports and force sensors of the cable driver.

Imported only when a hardware driver is selected (it needs opensourceleg; T-Motor needs
python-can, Dephy needs flexsea, the load cell spidev). Units: opensourceleg gives motor-side
angles in rad and velocities in rad/s for every actuator; currents are A for T-Motor and mA
for Dephy (converted here).

T-Motor AK servo mode: opensourceleg 3.5.0 opens its CAN bus itself, always socketcan
``can0``; :func:`open_can_manager` creates the library's (singleton) CAN manager on the
configured interface and channel instead, which also lets the tests use python-can's virtual
bus. Driving uses the drive's own velocity loop (VELOCITY mode); zero torque is CURRENT mode
at 0 A. Dephy actuators have no velocity mode in opensourceleg: they stay in CURRENT mode and
the velocity loop runs here, in the actuator node's fast loop thread.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import can
from opensourceleg.actuators.base import CONTROL_MODES
from opensourceleg.actuators.tmotor import CANManagerServo, TMotorServoActuator
from opensourceleg.logging.logger import LOGGER

from exo_hardware.cable_driver import MotorSample, VelocityLoop
from exo_hardware.config import HardwareConfig


def route_library_log() -> None:
    """Send opensourceleg's log file to the ROS log folder, not the current directory."""
    folder = Path(os.environ.get("ROS_LOG_DIR") or Path.home() / ".ros" / "log")
    folder.mkdir(parents=True, exist_ok=True)
    LOGGER._log_path = str(folder)  # opensourceleg 3.5.0 has no public setter for the folder


route_library_log()  # before the library logs anything (it opens the file on first use)


class StatusCounter(can.Listener):
    """Counts received frames per motor id (low byte of the id), to tell fresh status."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self._lock = threading.Lock()

    def on_message_received(self, msg: can.Message) -> None:
        """Count one frame."""
        motor_id = msg.arbitration_id & 0xFF
        with self._lock:
            self.counts[motor_id] = self.counts.get(motor_id, 0) + 1

    def count(self, motor_id: int) -> int:
        """Frames received from ``motor_id`` so far."""
        with self._lock:
            return self.counts.get(motor_id, 0)


def open_can_manager(config: HardwareConfig) -> tuple[CANManagerServo, StatusCounter]:
    """The T-Motor CAN manager of opensourceleg on the configured bus, with a status counter."""
    close_can_manager()
    bus = can.Bus(interface=config.can_interface, channel=config.can_channel,
                  bitrate=config.can_bitrate)
    manager = CANManagerServo.__new__(CANManagerServo)  # the singleton every motor shares
    manager.bus = bus
    counter = StatusCounter()
    manager.notifier = can.Notifier(bus, [counter])
    manager._initialized = True  # its __init__ would open socketcan can0 instead
    return manager, counter


def close_can_manager() -> None:
    """Stop the CAN manager's notifier and bus, so the next driver opens a fresh one."""
    manager = CANManagerServo._instance
    CANManagerServo._instance = None
    if manager is not None and getattr(manager, "_initialized", False):
        manager.notifier.stop()
        manager.bus.shutdown()


class TMotorPort:
    """One AK motor in servo mode; the drive runs the velocity loop."""

    def __init__(self, config: HardwareConfig, motor_id: int, counter: StatusCounter | None):
        self.actuator = TMotorServoActuator(
            tag=f"tmotor{motor_id}", motor_type=config.motor_type, motor_id=motor_id,
            gear_ratio=config.gear_ratio, offline=config.offline)
        self.motor_id = motor_id
        self.counter = counter
        self._seen = 0

    def start(self) -> None:
        """Power on (the library waits for status) in zero torque."""
        self.actuator.start()

    def read(self, now_s: float) -> MotorSample:
        """Latest status frame."""
        actuator = self.actuator
        actuator.update()
        seen = self.counter.count(self.motor_id) if self.counter is not None else self._seen + 1
        fresh, self._seen = seen != self._seen, seen
        return MotorSample(actuator.motor_position, actuator.motor_velocity,
                           actuator.motor_current, actuator.case_temperature,
                           actuator.error_info is not None, fresh)

    def drive_velocity(self, velocity_rad_s: float, now_s: float) -> None:
        """VELOCITY mode at ``velocity_rad_s`` (motor side)."""
        if self.actuator.mode != CONTROL_MODES.VELOCITY:
            self.actuator.set_control_mode(CONTROL_MODES.VELOCITY)
        self.actuator.set_motor_velocity(velocity_rad_s)

    def zero_torque(self) -> None:
        """CURRENT mode at 0 A."""
        if self.actuator.mode != CONTROL_MODES.CURRENT:
            self.actuator.set_control_mode(CONTROL_MODES.CURRENT)
        self.actuator.set_motor_current(0.0)

    def stop(self) -> None:
        """Zero torque, then the library's power-off."""
        self.zero_torque()
        self.actuator.stop()


class DephyPort:
    """One Dephy actuator in CURRENT mode with the velocity loop run here."""

    def __init__(self, config: HardwareConfig, actuator) -> None:
        self.actuator = actuator
        self.torque_constant = config.torque_constant_nm_per_a
        self.loop = VelocityLoop(config.velocity_gain_nm_s_per_rad,
                                 config.velocity_integral_nm_per_rad, config.max_motor_torque_nm)
        self._velocity = 0.0

    def start(self) -> None:
        """Open, stream, CURRENT mode with the library's default current gains."""
        self.actuator.start()
        self.actuator.set_control_mode(CONTROL_MODES.CURRENT)
        self.actuator.set_current_gains()

    def read(self, now_s: float) -> MotorSample:
        """Latest streamed status (the library raises on its thermal and I2t limits)."""
        actuator = self.actuator
        actuator.update()
        self._velocity = actuator.motor_velocity
        return MotorSample(actuator.motor_position, self._velocity,
                           actuator.motor_current / 1000.0, actuator.case_temperature,
                           False, True)

    def drive_velocity(self, velocity_rad_s: float, now_s: float) -> None:
        """Current from the PI velocity loop on the last measured velocity."""
        torque = self.loop.torque_nm(velocity_rad_s, self._velocity, now_s)
        self.actuator.set_motor_current(1000.0 * torque / self.torque_constant)

    def zero_torque(self) -> None:
        """0 mA, and a fresh velocity loop for the next time the drive is on."""
        self.loop.reset()
        self.actuator.set_motor_current(0.0)

    def stop(self) -> None:
        """Zero current, then the library's stop (motor off, streaming off, port closed)."""
        self.zero_torque()
        self.actuator.stop()


def dephy_actuator(config: HardwareConfig, port: str):
    """The opensourceleg DephyActuator for ``port`` (needs flexsea)."""
    from opensourceleg.actuators.dephy import DephyActuator

    if not config.offline and not os.access(port, os.R_OK | os.W_OK):
        # opensourceleg ends the whole process (os._exit) when it cannot open the port
        raise OSError(f"cannot open Dephy port {port}: missing or no permission"
                      " (dialout group)")
    return DephyActuator(tag=f"dephy:{port}", firmware_version=config.firmware_version,
                         port=port, gear_ratio=config.gear_ratio, baud_rate=config.baud_rate,
                         frequency=1000, offline=config.offline)


class AdcLoadCells:
    """Both cables' load cells on opensourceleg's ADS131M0x ADC (SPI), zeroed at start-up."""

    def __init__(self, config: HardwareConfig, adc) -> None:
        self.adc = adc
        self.channels = (config.left_adc_channel, config.right_adc_channel)
        self.n_per_mv = config.loadcell_n_per_mv
        self.zero_mv = (0.0, 0.0)

    def start(self) -> None:
        """Open the ADC and take the zero (the cables must be slack)."""
        self.adc.start()
        self.adc.update()
        self.zero_mv = tuple(float(self.adc.data[c]) for c in self.channels)

    def read(self) -> tuple[float, float]:
        """Tension per side, N."""
        self.adc.update()
        data = self.adc.data
        return tuple((float(data[c]) - zero) * self.n_per_mv
                     for c, zero in zip(self.channels, self.zero_mv, strict=True))

    def stop(self) -> None:
        """Standby and close the SPI port."""
        self.adc.stop()


def ads131_adc(config: HardwareConfig):
    """The opensourceleg ADS131M0x ADC with enough channels for both load cells (needs spidev)."""
    from opensourceleg.sensors.adc import ADS131M0x

    channels = max(config.left_adc_channel, config.right_adc_channel) + 1
    return ADS131M0x(tag="cable_loadcells", spi_bus=config.adc_spi_bus,
                     spi_cs=config.adc_spi_cs, data_rate=4000, num_channels=channels,
                     gains=[1] * channels, offline=config.offline)


class ThighImus:
    """Both thighs' pitch from opensourceleg's LordMicrostrainIMU (MSCL on the robot)."""

    def __init__(self, left_port: str, right_port: str, rate_hz: float, offline: bool) -> None:
        from opensourceleg.sensors.imu import LordMicrostrainIMU

        self.imus = [LordMicrostrainIMU(tag=f"thigh:{port}", port=port,
                                        frequency=int(rate_hz), offline=offline)
                     for port in (left_port, right_port)]

    def start(self) -> None:
        """Open and stream."""
        for imu in self.imus:
            imu.start()

    def read(self) -> tuple[float, float]:
        """(left, right) pitch, rad."""
        for imu in self.imus:
            imu.update()
        return self.imus[0].pitch, self.imus[1].pitch

    def stop(self) -> None:
        """Stop streaming."""
        for imu in self.imus:
            imu.stop()
