"""Entry points of the ``exo_control.actuator_drivers`` group: ``tmotor`` and ``dephy``.

Each reads ``$EXO_HARDWARE_CONFIG`` (exo_hardware.config), opens the hardware in zero torque
and returns a :class:`~exo_hardware.cable_driver.CableActuatorDriver`. Anything that stops it
(a missing library, a bad file, a CAN interface that is down) is a :class:`HardwareError`,
which the actuator node reports as a refused configure with the reason.
"""

from __future__ import annotations

import time
from pathlib import Path

from exo_hardware.cable_driver import CableActuatorDriver
from exo_hardware.config import HardwareConfig, HardwareError, load_hardware_config

INSTALL_HINT = "pip install -r tools/requirements-hardware.txt (see docs/hardware.md)"


def _import_ports(extra: str):
    try:
        from exo_hardware import osl_ports
    except ImportError as exc:
        raise HardwareError(f"the {extra} driver needs opensourceleg and python-can ({exc});"
                            f" {INSTALL_HINT}") from exc
    return osl_ports


def _force_sensor(osl_ports, config: HardwareConfig):
    if config.force_source != "loadcell":
        return None
    try:
        return osl_ports.AdcLoadCells(config, osl_ports.ads131_adc(config))
    except ImportError as exc:
        raise HardwareError(f"force_source 'loadcell' needs spidev ({exc})") from exc


def _started(driver: CableActuatorDriver, what: str) -> CableActuatorDriver:
    try:
        driver.start(time.monotonic())
    except Exception as exc:  # whatever the library raises while opening hardware
        driver.close()
        raise HardwareError(f"{what}: {exc}") from exc
    return driver


def tmotor_driver(config: HardwareConfig) -> CableActuatorDriver:
    """Two T-Motor AK servos (servo mode) on one CAN bus."""
    osl_ports = _import_ports("tmotor")
    counter = None
    if not config.offline:
        try:
            _, counter = osl_ports.open_can_manager(config)
        except Exception as exc:  # python-can: interface down, missing, no permission
            raise HardwareError(f"cannot open CAN {config.can_interface} {config.can_channel}:"
                                f" {exc} (docs/hardware.md: ip link set ... up)") from exc
    ports = [osl_ports.TMotorPort(config, motor_id, counter)
             for motor_id in (config.left_motor_id, config.right_motor_id)]
    driver = CableActuatorDriver(config, *ports, _force_sensor(osl_ports, config),
                                 on_close=osl_ports.close_can_manager)
    return _started(driver, f"T-Motor ids {config.left_motor_id}/{config.right_motor_id}"
                    f" on {config.can_channel}")


def dephy_driver(config: HardwareConfig) -> CableActuatorDriver:
    """Two Dephy actuators on USB serial ports."""
    osl_ports = _import_ports("dephy")
    try:
        ports = [osl_ports.DephyPort(config, osl_ports.dephy_actuator(config, port))
                 for port in (config.left_port, config.right_port)]
    except ImportError as exc:
        raise HardwareError(f"the dephy driver needs flexsea ({exc}); pip install flexsea")\
            from exc
    except OSError as exc:
        raise HardwareError(str(exc)) from exc
    driver = CableActuatorDriver(config, *ports, _force_sensor(osl_ports, config))
    return _started(driver, f"Dephy {config.left_port}/{config.right_port}")


def _from_file(build, path: str | Path | None) -> CableActuatorDriver:
    hw, _ = load_hardware_config(path)
    return build(hw)


def tmotor(path: str | Path | None = None) -> CableActuatorDriver:
    """Entry point ``tmotor``: the T-Motor driver from the hardware parameter file."""
    return _from_file(tmotor_driver, path)


def dephy(path: str | Path | None = None) -> CableActuatorDriver:
    """Entry point ``dephy``: the Dephy driver from the hardware parameter file."""
    return _from_file(dephy_driver, path)
