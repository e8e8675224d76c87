"""The cable driver's contract and the hardware parameter files (no hardware library needed)."""

import dataclasses
import math
from pathlib import Path

import pytest
import yaml
from exo_common.params import field_specs
from exo_control.actuator import ActuatorNodeConfig, Fault, load_driver
from exo_control.force_loop import ForceLoopConfig
from exo_hardware.cable_driver import CableActuatorDriver, MotorSample, VelocityLoop

from exo_hardware.config import (
    CONFIG_ENV,
    HardwareConfig,
    HardwareError,
    check_limits,
    load_hardware_config,
)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


class FakePort:
    """A drive that records what it was told and can be made to fail."""

    def __init__(self):
        self.sample = MotorSample(0.0, 0.0, 0.0, 30.0, False, True)
        self.calls: list[tuple] = []
        self.fail: set[str] = set()

    def _call(self, name, *args):
        self.calls.append((name, *args))
        if name in self.fail:
            raise RuntimeError(f"{name} failed")

    def start(self):
        self._call("start")

    def read(self, now_s):
        self._call("read")
        return self.sample

    def drive_velocity(self, velocity, now_s):
        self._call("velocity", velocity)

    def zero_torque(self):
        self._call("zero")

    def stop(self):
        self._call("stop")


class FakeLoadCells:
    def __init__(self, forces=(10.0, 20.0)):
        self.forces = forces
        self.stopped = False

    def start(self):
        pass

    def read(self):
        return self.forces

    def stop(self):
        self.stopped = True


def make(**changes):
    config = dataclasses.replace(HardwareConfig(), **changes)
    cells = FakeLoadCells() if config.force_source == "loadcell" else None
    left, right = FakePort(), FakePort()
    driver = CableActuatorDriver(config, left, right, cells)
    driver.start(0.0)
    return driver, left, right, cells


def test_command_exception_becomes_driver_fault_and_zero_torque():
    driver, left, right, _ = make()
    right.fail = {"velocity"}
    driver.update(0.0)
    driver.command(5.0, 5.0, True, 0.0)  # must not raise
    assert left.calls[-1] == ("zero",) and right.calls[-1] == ("zero",)
    assert driver.update(0.001).left.fault_flags & Fault.DRIVER


def test_read_exception_is_driver_fault_with_nan_values():
    driver, left, _, _ = make()
    left.fail = {"read"}
    reading = driver.update(0.0)
    assert reading.left.fault_flags & Fault.DRIVER and math.isnan(reading.left.force_n)


def test_over_velocity_hot_motor_and_non_finite_command():
    driver, left, right, _ = make(fault_velocity_rad_s=100.0, fault_temperature_c=60.0)
    left.sample = MotorSample(0.0, 120.0, 0.0, 30.0, False, True)
    right.sample = MotorSample(0.0, 0.0, 0.0, 65.0, False, True)
    reading = driver.update(0.0)
    assert reading.left.fault_flags == Fault.OVER_VELOCITY
    assert reading.right.fault_flags == Fault.DRIVER
    left.sample = right.sample = MotorSample(0.0, 0.0, 0.0, 30.0, False, True)
    driver.update(0.001)
    driver.command(math.inf, 1.0, True, 0.001)
    assert left.calls[-1] == ("zero",) and not driver.driving


def test_load_cell_replaces_the_estimate_and_nan_is_a_sensor_fault():
    driver, left, _, cells = make(force_source="loadcell", force_uncertainty_fraction=0.1)
    left.sample = MotorSample(0.0, 0.0, 5.0, 30.0, False, True)  # 5 A would estimate 172 N
    reading = driver.update(0.0)
    assert (reading.left.force_n, reading.right.force_n) == (10.0, 20.0)
    cells.forces = (math.nan, 20.0)
    assert driver.update(0.001).left.fault_flags & Fault.SENSOR
    driver.close()
    assert cells.stopped


def test_close_reaches_every_device_even_when_one_fails():
    driver, left, right, _ = make()
    left.fail = {"stop"}
    driver.close()
    assert ("stop",) in right.calls and right.calls[-1] == ("stop",)


def test_velocity_loop_integral_is_bounded_and_reset():
    loop = VelocityLoop(0.01, 10.0, 0.5)
    for step in range(1000):
        torque = loop.torque_nm(100.0, 0.0, step * 0.001)
    assert torque == 0.5 and loop.integral_nm == 0.5
    loop.reset()
    assert loop.torque_nm(0.0, 0.0, 2.0) == 0.0


def test_shipped_parameter_files_load_and_match_the_fast_loop():
    for name in ("tmotor", "dephy"):
        hw, loop = load_hardware_config(CONFIG_DIR / f"{name}.yaml")
        assert (hw.gear_ratio, hw.spool_radius_m) == (loop.gear_ratio, loop.spool_radius_m)
        assert hw.cable_force_bound_n(loop.max_force_n) <= hw.fault_force_n
        params = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())[
            "simulated_actuator"]["ros__parameters"]
        assert params["driver"] == name
        # Every fast-loop parameter is stated for this hardware, and nothing the node would
        # silently ignore (it does not declare unknown names) is there.
        loop_fields, node_fields = field_specs(ForceLoopConfig), field_specs(ActuatorNodeConfig)
        assert set(loop_fields) - set(params) == set(), name
        assert set(params) - set(loop_fields) - set(node_fields) == {"hw"}, name


def test_a_force_limit_the_estimate_cannot_guarantee_is_refused():
    loop = ForceLoopConfig(gear_ratio=9.0, spool_radius_m=0.03, max_force_n=250.0)
    with pytest.raises(HardwareError, match=r"max_force_n=250 .* 35% .* lower max_force_n"
                                            r" to 222 N"):
        check_limits(HardwareConfig(), loop)


def test_bad_files_and_values_are_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="left_reel_in_sign=0"):
        HardwareConfig(left_reel_in_sign=0)
    data = yaml.safe_load((CONFIG_DIR / "tmotor.yaml").read_text())
    data["simulated_actuator"]["ros__parameters"]["hw"]["can_chanel"] = "can1"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(HardwareError, match="unknown HardwareConfig parameter.*can_chanel"):
        load_hardware_config(bad)
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    with pytest.raises(HardwareError, match=CONFIG_ENV):
        load_hardware_config()


def test_drivers_are_registered_and_refuse_through_the_node_path(monkeypatch):
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    for name in ("tmotor", "dephy"):
        with pytest.raises(ValueError, match=CONFIG_ENV):  # the node refuses configure
            load_driver(name)
